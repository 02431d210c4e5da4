"""Old path of `data_pipeline.seqio_data.cache` (the Beam offline cache of a mixture), moved in issue
25 and kept so that existing commands and imports keep working: `python -m data_pipeline.cache ...`
runs the same command, and `import data_pipeline.cache` gives the very module
`data_pipeline.seqio_data.cache` (one copy, so monkeypatching either name patches both). New code
uses the new path.
"""

import sys

from data_pipeline.seqio_data import cache as _moved

if __name__ == "__main__":
    _moved.main()
else:
    sys.modules[__name__] = _moved
