"""phi-1 finetuning on CodeExercises, starting from the pretrained phi-1-base checkpoint, with the
paper's hyperparameters (arXiv 2306.11644, sec. 2): batch 256 x 2048, lr 1e-4, 50 warmup steps then
linear decay, weight decay 0.01, 6k steps. The model is phi-1 (configs/phi1.py)."""

import os

from phi1_jax.default_config import load_config_file


def get_config():
    config = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "phi1.py"))
    config.train.update(dict(steps=6_000, schedule_steps=0, global_batch_size=256, lr=1e-4, warmup_steps=50,
                             weight_decay=0.01, eval_every=500,
                             init_from="workdir/phi1"))  # a workdir, checkpoints dir or step dir
    config.data.mixture = "code_exercises"
    config.checkpoint.update(dict(every_steps=500, permanent_every_steps=0))
    config.workdir = "workdir/phi1_finetune"
    return config
