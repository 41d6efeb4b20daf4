"""Writing a checkpoint folder's files so that a reader never sees half of one and anyone may read it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(target: Path, write: Callable[[str], object]) -> None:
    """Call `write(tmp)` on a temporary file beside `target`, then rename it over `target`.

    A server reloading the folder meanwhile reads the old file or the new one, never a torn one. The file
    ends up 0644: mkstemp (and safetensors' own writer) make 0600, and a checkpoint is meant to be shared
    (a service running as another user, a container)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
