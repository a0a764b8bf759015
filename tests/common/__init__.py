"""Unit tests of what the workflow's stages share (output folders)."""
