"""Lets `python train/X.py` import the shared package that lives in submission/ (one source of truth)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "submission") not in sys.path:
    sys.path.insert(0, str(ROOT / "submission"))
