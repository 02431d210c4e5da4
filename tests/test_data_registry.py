"""seqio's convention, as t5x users expect it: importing `data_pipeline.seqio_data.tasks` registers the embedded
default's Tasks and Mixtures under their plain names, ready to read; configured shards keep their
own, suffixed registrations."""

import subprocess
import sys

from train_testlib import REPO

PROBE = """
import seqio
import data_pipeline.seqio_data.tasks
from data_pipeline.seqio_data import tasks
mixture = seqio.get_mixture_or_task("embedded_code_textbook")
print(sorted(t.name for t in mixture.tasks))
task = seqio.get_mixture_or_task("phi1_embedded_exercises")
example = next(task.get_dataset({"targets": 64}, split="validation", shuffle=False).as_numpy_iterator())
print(len(example["targets"]), task.output_features["targets"].vocabulary.decode(example["targets"].tolist())[:12])
print(tasks.register_mixture("embedded_code_textbook") is mixture,
      tasks.register_mixture("embedded_code_exercises", max_bad_fraction=0.5).name)
"""


def test_importing_the_tasks_module_registers_the_embedded_default():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    names, example, again = result.stdout.strip().splitlines()
    assert names == "['phi1_embedded_stack', 'phi1_embedded_textbook']"
    length, text = example.split(" ", 1)
    assert 0 < int(length) <= 64 and text.strip()
    same, other = again.split()
    assert same == "True" and other.startswith("embedded_code_exercises_")
