"""Files only their owner reads: keys, credentials, databases and logs hold what others of
the same machine must not see (mode 0600 in folders of mode 0700)."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(folder: Path) -> Path:
    """Make `folder` and every missing folder above it readable by their owner alone."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return folder


def write_private(path: Path, text: str | bytes) -> None:
    """Write a file only its owner reads, in a folder only its owner lists."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)
