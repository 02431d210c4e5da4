"""Old path of `data_pipeline.seqio_data.loader` (the training data interface), moved in issue 25 and
kept so that existing imports keep working: `import data_pipeline.loader` gives the very module
`data_pipeline.seqio_data.loader` (one copy, so monkeypatching either name patches both). New code
uses the new path.
"""

import sys

from data_pipeline.seqio_data import loader as _moved

sys.modules[__name__] = _moved
