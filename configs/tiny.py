"""A tiny phi-shaped model that trains on a laptop CPU in minutes (the `make demo` run)."""

from phi1_jax.default_config import get_default_config


def get_config():
    config = get_default_config()
    config.model.update(dict(vocab_size=4096, hidden_size=128, intermediate_size=512, num_layers=2,
                             num_heads=4, max_position_embeddings=256))
    config.train.update(dict(steps=400, global_batch_size=8, seq_len=256, lr=3e-3, warmup_steps=20,
                             eval_every=100, eval_steps=4, log_every=10))
    config.data.mixture = "embedded_code_textbook"
    config.checkpoint.update(dict(every_steps=200, keep=2))
    config.workdir = "workdir/tiny"
    return config
