"""Imported first by every stage: puts this checkout's root on sys.path.

So `textrnn` is always the copy beside the script, in the workspace, in DVC's temporary
experiment folders and under torchrun, with nothing to install.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
