"""General-purpose compressors as a yardstick for the model's held-out BPC (issue 2's "for scale").

Each compressor first reads a context (the standard-library files of the training split, or the whole
training split: what the model learned from), then the held-out files as one stream; the held-out files
cost the difference in compressed size. Windows are large enough to hold the whole context. Streaming
lets a compressor also learn from earlier held-out files, which `codelstm eval` (fresh state per file)
does not allow the model.

Usage: python bench/compressors.py [--data data/default-corpus] [--stdlib-prefix python3.]
Needs the `zstd` command (Debian package zstd); xz comes from Python's lzma.
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import subprocess
from pathlib import Path

from codelstm.training.data import open_stream, split_documents


def documents(data: Path, split: str) -> list[bytes]:
    """The corpus's files of one split, in manifest order."""
    return split_documents(open_stream(data / f"{split}.bin"))


def concatenated(docs: list[bytes]) -> bytes:
    return b"".join(d + b"\n" for d in docs)


def xz_bits(data: bytes) -> int:
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 28}]
    return 8 * len(lzma.compress(data, format=lzma.FORMAT_XZ, filters=filters))


def zstd_bits(data: bytes) -> int:
    out = subprocess.run(["zstd", "-19", "--long=27", "-T1", "-q", "-c"], input=data, capture_output=True, check=True)
    return 8 * len(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/default-corpus"))
    parser.add_argument("--stdlib-prefix", default="python3.",
                        help="training files whose name starts with this are the standard library")
    args = parser.parse_args()
    if shutil.which("zstd") is None:
        raise SystemExit("zstd is not installed (apt-get install zstd)")
    manifest = json.loads((args.data / "manifest.json").read_text())
    train_names = [f["name"] for f in manifest["files"] if f["split"] == "train"]
    train_docs = documents(args.data, "train")
    if len(train_docs) != len(train_names):
        raise SystemExit(f"{args.data}: train.bin holds {len(train_docs)} files, the manifest lists {len(train_names)}")
    stdlib = concatenated([d for n, d in zip(train_names, train_docs) if n.startswith(args.stdlib_prefix)])
    everything = concatenated(train_docs)
    held_out = documents(args.data, "val")
    stream = concatenated(held_out)
    text_bytes = sum(len(d) for d in held_out)
    print(f"context: standard library {len(stdlib):,} bytes, whole training split {len(everything):,} bytes; "
          f"held-out: {len(held_out)} files, {text_bytes:,} bytes")
    print("| compressor | bits per held-out byte: alone | after the standard library | after the training split |")
    print("|---|---|---|---|")
    for name, bits in (("xz -9e", xz_bits), ("zstd -19 --long=27", zstd_bits)):
        cells = [bits(stream) / text_bytes]
        cells += [(bits(context + stream) - bits(context)) / text_bytes for context in (stdlib, everything)]
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
