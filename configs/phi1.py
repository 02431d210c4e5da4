"""phi-1 (1.3B) pretraining on CodeTextbook, the paper's hyperparameters (arXiv 2306.11644, sec. 2)."""

from phi1_jax.default_config import get_default_config


def get_config():
    config = get_default_config()
    config.model.dtype = "bfloat16"
    config.model.resid_dropout = 0.1
    config.model.attention_dropout = 0.1
    config.model.scan_layers = True
    config.model.remat_policy = "dots_with_no_batch_dims"
    config.workdir = "workdir/phi1"
    return config
