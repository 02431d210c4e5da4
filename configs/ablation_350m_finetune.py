"""Finetuning the best arm of the 350M data ablation (configs/ablation_350m.py:filtered_textbook) on
CodeExercises, with phi-1's finetuning hyperparameters (configs/phi1_finetune.py) on the
phi-1-small model: the third bar of each group in the paper's Figure 2.1.

    python -m phi1_jax.train --config=configs/ablation_350m_finetune.py \
        --config.train.init_from=gs://BUCKET/phi1/ablation/filtered_textbook \
        --config.data.sources.exercises=gs://BUCKET/phi1/ablation_data/exercises
"""

import os

from phi1_jax.default_config import load_config_file

_HERE = os.path.dirname(os.path.abspath(__file__))


def get_config():
    config = load_config_file(os.path.join(_HERE, "phi1_finetune.py"))
    small = load_config_file(os.path.join(_HERE, "phi1_small.py"))
    config.model, config.mesh = small.model, small.mesh
    config.train.init_from = "workdir/ablation_350m/filtered_textbook"
    config.workdir = "workdir/ablation_350m/finetune"
    return config
