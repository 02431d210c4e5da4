"""`make demo`: train configs/tiny.py on the embedded default mixture on this machine's CPU, then
show what came out: the loss curve (a PNG in the workdir), the final eval loss, a greedy sample
from the checkpoint, and where the checkpoint is.

    python -m phi1_jax.demo [--workdir workdir/demo] [--steps N] [--prompt 'def add(a, b):']

The demo starts from scratch each time: it empties its own workdir first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

from phi1_jax.checkpoint import load_model
from phi1_jax.metrics import read_metrics
from phi1_jax.default_config import load_config_file
from phi1_jax.train import ConfigError, train

TINY_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "tiny.py")


def plot_losses(metrics_path: str, out_path: str) -> None:
    """Train and eval loss against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train_points = [(r["step"], r["loss"]) for r in records if "loss" in r]
    eval_points = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(*zip(*train_points), label="train loss")
    if eval_points:
        ax.plot(*zip(*eval_points), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title("phi1-jax tiny demo")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def greedy_sample(workdir: str, prompt: str, max_new_tokens: int) -> str:
    """The checkpoint's greedy continuation of `prompt`, decoded with the vocabulary it carries."""
    from phi1_jax.checkpoint_vocabulary import for_checkpoint
    from phi1_jax.sampling import generate

    config, params = load_model(workdir)
    vocabulary = for_checkpoint(workdir, config.vocab_size)
    ids = vocabulary.encode(prompt)
    new = generate(config, params, [ids], max_new_tokens=max_new_tokens, eos_id=vocabulary.eos_id)[0]
    return vocabulary.decode(list(ids) + new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="workdir/demo")
    parser.add_argument("--steps", type=int, default=None, help="default: configs/tiny.py's train.steps")
    parser.add_argument("--prompt", default="class Stack:\n    def __init__(self):\n        self.")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    config = load_config_file(TINY_CONFIG)
    config.workdir = args.workdir
    if args.steps:
        config.train.steps = args.steps
    shutil.rmtree(args.workdir, ignore_errors=True)
    start = time.perf_counter()
    try:
        summary = train(config)
    except ConfigError as error:
        raise SystemExit(f"phi1_jax.demo: error: {error}") from error
    train_seconds = time.perf_counter() - start

    curve = os.path.join(args.workdir, "loss_curve.png")
    plot_losses(os.path.join(args.workdir, "metrics.jsonl"), curve)
    sample = greedy_sample(args.workdir, args.prompt, args.max_new_tokens)
    print("\n=== phi1-jax demo: summary ===")
    print(f"trained {summary['step']} steps of {config.train.global_batch_size} x {config.train.seq_len} tokens "
          f"in {train_seconds:.0f} s")
    print(f"final eval loss: {summary['eval_loss']:.4f} nats/token")
    print(f"loss curve: {curve}")
    print(f"checkpoint: {summary['checkpoint_dir']}/{summary['step']} (vocabulary in {summary['checkpoint_dir']}/tokenizer)")
    print(f"for PyTorch: python -m phi1_jax.convert to-hf {args.workdir} OUT_DIR")
    print(f"greedy sample:\n{sample}")


if __name__ == "__main__":
    main()
