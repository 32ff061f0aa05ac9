#!/usr/bin/env python
"""Download, verify and extract the course's real sets or one of the paper's benchmarks.

    python data_scripts/download.py course                 the real sets the notebooks use (sizes printed first)
    python data_scripts/download.py --list                 what exists, how big, what is already on disk
    python data_scripts/download.py voc2007                download + SHA-256 check + safe extraction + file counts
    python data_scripts/download.py voc2007 --root /data   put it in /data/voc2007 (default: $COURSE_DATA_DIR)
    python data_scripts/download.py voc2007 --verify-only  check what is on disk, download nothing

Interrupted downloads resume where they stopped. The logic lives in ``course_utils.datasets.download``; this file
only makes it runnable from a clone where the course package is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from course_utils.datasets.download import main
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from course_utils.datasets.download import main

if __name__ == "__main__":
    sys.exit(main())
