"""The paper's data ablation at 350M (phi-1, arXiv 2306.11644, sec. 2.1 and Figure 2.1): phi-1-small
(configs/phi1_small.py) with phi-1's pretraining schedule, trained on one of three data arms that
differ in nothing else. The paper reports 12.19% HumanEval pass@1 for `unfiltered` (deduplicated
Python from The Stack), 17.68% for `filtered` (the classifier's kept files) and 20.12% for
`filtered_textbook` (those plus the synthetic textbooks), all at 36k steps.

    python -m phi1_jax.train --config=configs/ablation_350m.py:filtered \
        --config.workdir=gs://BUCKET/phi1/ablation/filtered

The arm's sources follow the layout that the data stages write under DATA_ROOT (override a path
with --config.data.sources.stack=... when yours differ):
    DATA_ROOT/unfiltered/   dedup + decontaminate of The Stack's Python files
    DATA_ROOT/filtered/     `python -m data_pipeline.filter` of unfiltered/ (its kept-* shards)
    DATA_ROOT/textbook/     `python -m data_pipeline.synth textbook`, decontaminated
`python -m evaluation.data_ablation` runs the same three arms end to end at CPU scale.
"""

import os

from evaluation.data_ablation import ARMS, arm_sources
from phi1_jax.default_config import load_config_file

DATA_ROOT = "gs://BUCKET/phi1/ablation_data"


def get_config(arm: str = "filtered_textbook"):
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: use configs/ablation_350m.py:<{'|'.join(ARMS)}>")
    config = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "phi1_small.py"))
    config.train.steps = 36_000  # the paper's ablation point; phi-1's schedule is 36k steps
    config.data.mixture = "code_textbook"
    sources, rates = arm_sources(arm, {"unfiltered": f"{DATA_ROOT}/unfiltered",
                                       "filtered": f"{DATA_ROOT}/filtered/kept-*",
                                       "textbook": f"{DATA_ROOT}/textbook"})
    config.data.sources.update(sources)
    config.data.mixture_rates.update(rates)
    config.workdir = f"workdir/ablation_350m/{arm}"
    return config
