"""Old path of `data_pipeline.seqio_data.tasks` (importing it registers the embedded default's seqio
Tasks and Mixtures), moved in issue 25 and kept so that existing imports keep working: `import
data_pipeline.tasks` gives the very module `data_pipeline.seqio_data.tasks` (one copy, so
monkeypatching either name patches both). New code uses the new path.
"""

import sys

from data_pipeline.seqio_data import tasks as _moved

sys.modules[__name__] = _moved
