"""Measuring and removing folders of the home (job logs, API snapshots)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def tree_bytes(path: Path) -> int:
    """Return the bytes of the files under ``path`` (links not followed; 0 if absent)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed meanwhile
    return total


def remove_tree(path: Path) -> int:
    """Remove ``path`` and everything under it; return the bytes its files held."""
    size = tree_bytes(path)
    shutil.rmtree(path, ignore_errors=True)
    return size
