"""Where the bundled default model lives (shipped inside the package, so no command downloads weights)."""

import os
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parent / "default_model"


def ensure_writable(folder: Path) -> None:
    """Create `folder` and prove a file can be written in it; raises OSError otherwise.

    The probe's name carries the process id, so ranks started together never race on one file."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-test-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()
