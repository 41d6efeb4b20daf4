"""Source languages recognised by file extension (the corpus builder and eval report per language)."""

from __future__ import annotations

from pathlib import PurePath

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript",
    ".go": "go", ".rs": "rust",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".swift": "swift", ".lua": "lua",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell",
    ".sql": "sql", ".r": "r", ".jl": "julia", ".hs": "haskell", ".ml": "ocaml", ".ex": "elixir", ".exs": "elixir",
    ".dart": "dart", ".pl": "perl", ".pm": "perl", ".m": "objective-c", ".vue": "vue", ".svelte": "svelte",
}

ALL_LANGUAGES = frozenset(EXTENSIONS.values())


def language_of(path: str | PurePath) -> str | None:
    """Language id for a path, or None when the extension is not a known source language."""
    return EXTENSIONS.get(PurePath(path).suffix.lower())


def parse_languages(spec: str | None) -> frozenset[str]:
    """`python,java` -> {'python', 'java'}; None or 'all' -> every known language. Raises ValueError on unknown ids."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return ALL_LANGUAGES
    langs = frozenset(s.strip().lower() for s in spec.split(",") if s.strip())
    unknown = langs - ALL_LANGUAGES
    if unknown:
        raise ValueError(f"unknown language(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(ALL_LANGUAGES))})")
    return langs
