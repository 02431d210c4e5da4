"""Old path of `data_pipeline.seqio_data.vocabularies` (`load_vocabulary`), moved in issue 25 and kept
so that existing imports keep working: `import data_pipeline.vocabularies` gives the very module
`data_pipeline.seqio_data.vocabularies` (one copy, so monkeypatching either name patches both). New
code uses the new path.
"""

import sys

from data_pipeline.seqio_data import vocabularies as _moved

sys.modules[__name__] = _moved
