"""The cleaning stages' parts (DESIGN.md data flow: "dedup (MinHash)" then "decontaminate vs
HumanEval/MBPP"): shard intake with bad-input accounting, shingles and n-grams, MinHash signatures
and clusters, the benchmark index, the AST matcher, embedding matches, and the Beam forms. The stage
commands are `data_pipeline.dedup` and `data_pipeline.decontaminate`."""
