"""Detection on video files, cameras and image folders."""

from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "exported" / "hands_ssd320"  # the shipped one
