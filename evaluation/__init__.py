"""Evaluation (DESIGN.md data flow: "sample with KV cache -> sandbox -> pass@k"): sample generation
front-ends (our checkpoints, Hugging Face model dirs, OpenAI-compatible endpoints), the sandbox that
runs untrusted completions, and HumanEval/MBPP scoring with unbiased pass@k.
`python -m evaluation.humaneval --help` is the entry point."""
