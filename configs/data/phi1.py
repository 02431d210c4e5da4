"""The phi-1 data recipe at full scale (arXiv 2306.11644, sec. 2): The Stack's Python files
filtered by an educational-value classifier trained on LLM annotations, a synthetic textbook and
synthetic exercises, each deduplicated and decontaminated, then cached for training.

    python -m data_pipeline.recipe --config=configs/data/phi1.py \\
        --config.output_root=gs://BUCKET/phi1-data \\
        --config.inputs.code='gs://BUCKET/the-stack-dedup/data/python/*.parquet' \\
        --config.llm.base_url=https://api.openai.com/v1 --config.llm.model=gpt-4o-mini \\
        --config.beam_options="--runner=DataflowRunner --project=P --region=R --temp_location=gs://BUCKET/tmp --setup_file=./setup.py"

Sizes follow the paper: about 6B tokens of filtered code, under 1B textbook tokens (about 1,500
tokens per section), about 180M exercise tokens (about 250 tokens per exercise)."""

from data_pipeline.recipe_config import get_default_config


def get_config():
    config = get_default_config()
    config.annotate.update(dict(num=100_000, budget_usd=500.0))  # the paper labelled ~100k files with GPT-4
    config.filter.num_shards = 1024
    config.decontaminate.benchmarks = ""  # HumanEval always; add MBPP's jsonl here
    config.textbook.update(dict(num=650_000, num_shards=256, budget_usd=2_000.0))
    config.exercises.update(dict(num=720_000, num_shards=128, budget_usd=1_000.0))
    return config
