"""Where the workflow's things are: the checkout, the shipped model family, the cache folder."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "exported" / "hands_ssd320"  # the shipped model, every artifact
# Downloads and npm/pip packages the project fetches (env HANDS_CACHE).
CACHE_DIR = Path(os.environ.get("HANDS_CACHE", Path.home() / ".cache" / "hands-odapi"))
