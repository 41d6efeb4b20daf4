"""Where the bundled default model lives (shipped inside the package, so no command downloads weights)."""

from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parent / "default_model"
