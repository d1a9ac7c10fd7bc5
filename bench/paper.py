"""Reproduce the CREMBO paper's tabular experiments: `python bench/paper.py --quick`.

The same as `crembo paper`; see crembo/paper.py for what is measured.
"""

import sys

from crembo.evaluation.paper import main

if __name__ == "__main__":
    sys.exit(main())
