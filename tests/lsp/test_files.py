"""Which files of a folder the language server uploads, how uploads are cut into request bodies, and the
workspace settings: plain functions on real files in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

from codelstm.lsp.files import FileFilter, collect, extensions_for
from codelstm.lsp.options import Options, merge_options
from codelstm.lsp.workspace import encode_batches, workspace_id_for


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def test_gitignore_rules_nested_negated_and_excluded(tmp_path):
    write(tmp_path, {
        ".gitignore": "*.gen.py\n/top_only.py\nlogs/\n!keep.gen.py\n",
        "a.py": "a", "x.gen.py": "x", "keep.gen.py": "k", "top_only.py": "t", "sub/top_only.py": "s",
        "logs/l.py": "l", "sub/.gitignore": "local.py\n", "sub/local.py": "l", "local.py": "top level is fine",
        "tools/skip_me.py": "by workspaceExclude", ".git/info/exclude": "private.py\n", "private.py": "p",
        "dist/d.py": "build output", ".github/w.py": "hidden", "lib.rs": "not python",
    })
    f = FileFilter(tmp_path, extensions_for(("python",)), exclude=("tools/",))
    got = {rel for rel, _ in collect(f, 1 << 20, 1 << 20).documents}
    assert got == {"a.py", "keep.gen.py", "sub/top_only.py", "local.py"}


def test_open_documents_replace_the_disk_and_caps_apply(tmp_path):
    write(tmp_path, {"a.py": "disk", "b.py": "b" * 100, "c.py": "c" * 10, "d.py": b"\xff\xfe not utf-8"})
    f = FileFilter(tmp_path, extensions_for(("python",)))
    collected = collect(f, max_file_bytes=50, max_total_bytes=1 << 20, overrides={"a.py": "buffer"})
    assert dict(collected.documents) == {"a.py": "buffer", "c.py": "c" * 10}
    assert collected.skipped["too_large"] == 1 and collected.skipped["not_utf8"] == 1
    capped = collect(f, max_file_bytes=50, max_total_bytes=12)
    assert capped.capped and [rel for rel, _ in capped.documents] == ["a.py"]  # 5 bytes, then c.py's 11 do not fit


def test_language_ids_map_to_extensions():
    assert {".js", ".jsx", ".mjs", ".cjs"} <= extensions_for(("javascriptreact",))
    assert ".py" in extensions_for(()) and ".py" not in extensions_for(("rust",))


def test_batches_stay_under_the_body_limit_and_keep_every_document():
    documents = [(f"f{i}.py", "é\"\n" * (i * 500)) for i in range(40)]
    batches = list(encode_batches(documents, max_bytes=64 << 10))
    assert len(batches) > 1
    assert all(len(body) <= 64 << 10 for paths, body in batches if len(paths) > 1)
    decoded = [d for _, body in batches for d in json.loads(body)["documents"]]
    assert [(d["path"], d["text"]) for d in decoded] == documents


def test_lone_surrogates_from_an_editor_are_replaced():
    [(_, body)] = encode_batches([("a.py", "x = '\ud800'")])
    assert json.loads(body)["documents"][0]["text"] == "x = '?'"


def test_workspace_id_is_stable_per_folder(tmp_path):
    assert workspace_id_for(tmp_path) == workspace_id_for(tmp_path)
    assert workspace_id_for(tmp_path) != workspace_id_for(tmp_path / "other")
    assert workspace_id_for(tmp_path).startswith("lsp-")


def test_workspace_settings_are_validated():
    options, problems = merge_options(Options(), {
        "workspace": False, "workspaceMaxBytes": 2 << 20, "workspaceDebounceMs": 300,
        "workspaceExclude": ["docs/"], "workspaceMaxFileBytes": 5})
    assert (options.workspace, options.workspace_max_bytes, options.workspace_debounce_ms,
            options.workspace_exclude) == (False, 2 << 20, 300, ("docs/",))
    assert options.workspace_max_file_bytes == Options().workspace_max_file_bytes
    assert problems == ["workspaceMaxFileBytes: must be an integer from 1024 to 1048576"]
