"""Curation: the educational-value rubric and the human-read labels that seed DESIGN.md's filtering
stage (annotate -> classify -> filter), shipped so the classifier trains with no download and no
API key.

- `rubric.md`: the versioned rubric the LLM annotator embeds verbatim in its prompt.
- `labels_v1.jsonl`: training labels for real Python files on this machine (standard library,
  installed packages, embedded exercises), each scored by reading the file's opening.
- `heldout_v1.jsonl`: unseen educational vs. generated files, for the AUC check.
- `labelled_files`: turns either labels file into record shards by finding each file here.
"""
