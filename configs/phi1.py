"""phi-1 (1.3B) pretraining on CodeTextbook, the paper's hyperparameters (arXiv 2306.11644, sec. 2):
AdamW, linear warmup 750 then linear decay, lr 1e-3, weight decay 0.1, batch 1024 x 2048, dropout 0.1,
a 36k-step schedule of which the paper kept the checkpoint at 24k steps (~50B tokens)."""

from phi1_jax.default_config import get_default_config


def get_config():
    config = get_default_config()
    config.model.dtype = "bfloat16"  # compute; parameters and optimizer state stay float32
    config.model.resid_dropout = 0.1
    config.model.attention_dropout = 0.1
    config.model.scan_layers = True
    config.model.remat_policy = "dots_with_no_batch_dims"
    config.train.steps = 24_000
    config.train.schedule_steps = 36_000
    # Parameters and Adam state sharded over every chip (ZeRO-3); 1.3B in float32 with Adam is
    # ~23 GB, more than one v5e/v4 chip holds. Raise train.microbatches where activations do not fit.
    config.mesh.update(dict(data=1, fsdp=-1, tensor=1))
    config.checkpoint.update(dict(every_steps=1000, keep=3, permanent_every_steps=6000))
    config.workdir = "workdir/phi1"
    return config
