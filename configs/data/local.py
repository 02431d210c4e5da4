"""The data recipe on one machine with no network: the standard library and installed packages
stand in for The Stack, the shipped labels replace annotation, and the embedded textbook and
exercises replace synthesis unless an endpoint is given (--config.llm.model=M
--config.llm.base_url=URL, which also turns annotation back on with --config.annotate.labels='').
The printed training commands use configs/tiny.py and configs/tiny_finetune.py.

    python -m data_pipeline.recipe --config=configs/data/local.py --config.output_root=workdir/data
"""

from data_pipeline.recipe_config import SHIPPED, get_default_config


def get_config():
    config = get_default_config()
    config.output_root = "workdir/data"
    config.inputs.update(dict(code="installed-python", max_files=600))
    config.annotate.update(dict(labels=SHIPPED, num=120))
    config.classify.trees = 100
    config.decontaminate.methods = "substring,ngram,ast"  # the embedding method takes minutes per hundred files here
    config.textbook.num = 20
    config.exercises.num = 40
    config.training.update(dict(pretrain="configs/tiny.py", finetune="configs/tiny_finetune.py"))
    return config
