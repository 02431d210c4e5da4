"""Finetuning the tiny model (configs/tiny.py) on exercises: phi-1's finetuning recipe
(configs/phi1_finetune.py) scaled down to the tiny run. As phi-1 goes from lr 1e-3 to 1e-4, the
learning rate is a tenth of pretraining's; a short linear warmup then linear decay to zero, weight
decay 0.01, and a mixture of exercises only (`code_exercises`). Batch and sequence length stay
tiny's, so a finetuning step trains the same tokens as a pretraining step.

    python -m phi1_jax.train --config=configs/tiny_finetune.py \
        --config.train.init_from=workdir/tiny --config.data.sources.exercises=EXERCISE_SHARDS

`python -m evaluation.data_ablation --finetune` runs it on the best arm's checkpoints, with the
embedded exercises split by family (`evaluation.exercise_split`).
"""

import os

from phi1_jax.default_config import load_config_file


def get_config():
    config = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.py"))
    config.train.update(dict(steps=100, schedule="linear", schedule_steps=0, lr=3e-4, warmup_steps=5,
                             weight_decay=0.01, eval_every=100, init_from="workdir/tiny"))
    config.data.mixture = "code_exercises"
    config.checkpoint.update(dict(every_steps=100, keep=1))
    config.workdir = "workdir/tiny_finetune"
    return config
