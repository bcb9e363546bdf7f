"""Tests of ``std/file`` on real files under a temporary files root."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conv3n_jupyter.blocks.std.file import File
from conv3n_jupyter.errors import FileAccessError
from tests.blocks.fakectx import FakeContext

BLOCK = File()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("top secret")
    return r


async def run(root: Path, **config: Any) -> Any:
    """Run the block with ``config`` under ``root`` and return its data."""
    out = await BLOCK.run(FakeContext(BLOCK, config, files_root=root))
    assert out.port == "default"
    return out.data


def leftovers(folder: Path) -> list[str]:
    """Temp files the atomic writer may have left behind."""
    return sorted(p.name for p in folder.rglob("*.tmp"))


# -- read ----------------------------------------------------------------------------------


async def test_read_text_json_lines_bytes(root: Path) -> None:
    """read returns text, parsed JSON, lines without endings and base64 bytes, with size."""
    (root / "t.txt").write_text("héllo\nworld\n", encoding="utf-8")
    (root / "d.json").write_bytes(b'\xef\xbb\xbf{"a": [1, 2]}')
    (root / "crlf.txt").write_bytes(b"one\r\ntwo\r\n\r\nlast")
    (root / "b.bin").write_bytes(bytes(range(256)))

    text = await run(root, operation="read", path="t.txt")
    assert text == {"path": "t.txt", "format": "text", "size": 13, "content": "héllo\nworld\n"}
    assert (await run(root, operation="read", path="d.json", format="json"))["content"] == {
        "a": [1, 2]
    }
    lines = await run(root, operation="read", path="crlf.txt", format="lines")
    assert lines["content"] == ["one", "two", "", "last"]
    raw = await run(root, operation="read", path="b.bin", format="bytes")
    assert base64.b64decode(raw["content"]) == bytes(range(256))


async def test_read_csv_as_objects(root: Path) -> None:
    """csv gives one object per row keyed by the header; short rows get null, long ones _extra."""
    (root / "p.csv").write_text('id;name\n1;"a;b"\n2\n3;c;extra\n')
    data = await run(root, operation="read", path="p.csv", format="csv", delimiter=";")
    assert data["content"] == [
        {"id": "1", "name": "a;b"},
        {"id": "2", "name": None},
        {"id": "3", "name": "c", "_extra": ["extra"]},
    ]


async def test_read_other_encoding(root: Path) -> None:
    """``encoding`` decodes non-UTF-8 text."""
    (root / "l.txt").write_bytes("café".encode("latin-1"))
    data = await run(root, operation="read", path="l.txt", encoding="latin-1")
    assert data["content"] == "café"


async def test_read_missing_file_names_the_path(root: Path) -> None:
    """A missing file is a non-retryable FileAccessError naming the path."""
    with pytest.raises(FileAccessError, match=r"cannot read 'nope/x.txt': no such file") as e:
        await run(root, operation="read", path="nope/x.txt")
    assert e.value.retryable is False
    assert e.value.block_type == "std/file"


async def test_read_folder_is_an_error(root: Path) -> None:
    """Reading a folder fails with a clear reason."""
    (root / "dir").mkdir()
    with pytest.raises(FileAccessError, match="it is a folder"):
        await run(root, operation="read", path="dir")


async def test_bad_json_names_file_line_and_column(root: Path) -> None:
    """A JSON syntax error names the file, line and column."""
    (root / "bad.json").write_text('{\n  "a": 1,\n  "b": oops\n}')
    with pytest.raises(FileAccessError, match=r"'bad.json': invalid JSON at line 3, column 8"):
        await run(root, operation="read", path="bad.json", format="json")


async def test_bad_csv_names_file_and_line(root: Path) -> None:
    """A CSV error names the file and the line."""
    (root / "bad.csv").write_text("a\nok\n" + "x" * 200_000 + "\n")
    with pytest.raises(FileAccessError, match=r"'bad.csv': invalid CSV at line 3"):
        await run(root, operation="read", path="bad.csv", format="csv")


async def test_binary_as_text_suggests_bytes(root: Path) -> None:
    """Undecodable text names the byte offset and suggests the bytes format."""
    (root / "x.bin").write_bytes(b"ok\xff\xfe")
    with pytest.raises(FileAccessError, match=r"byte 2\).*format 'bytes'"):
        await run(root, operation="read", path="x.bin")


# -- write ---------------------------------------------------------------------------------


async def test_write_each_format_round_trips(root: Path) -> None:
    """write serialises text, json, csv, bytes and lines; read gives the same content back."""
    rows = [{"id": 1, "tags": ["a"], "ok": True, "none": None}, {"id": 2, "extra": "x"}]
    cases: list[tuple[str, Any, Any]] = [
        ("text", "plain\ntext", "plain\ntext"),
        ("json", {"a": [1, "é"]}, {"a": [1, "é"]}),
        (
            "csv",
            rows,
            [
                {"id": "1", "tags": '["a"]', "ok": "true", "none": "", "extra": ""},
                {"id": "2", "tags": "", "ok": "", "none": "", "extra": "x"},
            ],
        ),
        (
            "bytes",
            base64.b64encode(b"\x00\x01\xff").decode(),
            base64.b64encode(b"\x00\x01\xff").decode(),
        ),
        ("lines", ["a", "b", 3], ["a", "b", "3"]),
    ]
    for fmt, content, expected in cases:
        written = await run(root, operation="write", path=f"out.{fmt}", format=fmt, content=content)
        assert written["path"] == f"out.{fmt}" and written["mode"] == "overwrite"
        assert written["bytes"] == (root / f"out.{fmt}").stat().st_size
        back = await run(root, operation="read", path=f"out.{fmt}", format=fmt)
        assert back["content"] == expected, fmt
    assert (root / "out.json").read_text().endswith("\n")
    assert leftovers(root) == []


async def test_write_default_format_follows_content(root: Path) -> None:
    """Without format, a string is written as text and anything else as JSON."""
    await run(root, operation="write", path="s.txt", content="hi")
    await run(root, operation="write", path="o.json", content={"n": 1}, indent=None)
    assert (root / "s.txt").read_text() == "hi"
    assert (root / "o.json").read_text() == '{"n": 1}\n'


async def test_write_csv_list_of_lists(root: Path) -> None:
    """A list of lists is written as rows with no header."""
    await run(root, operation="write", path="m.csv", format="csv", content=[["a", 1], ["b", None]])
    assert (root / "m.csv").read_text() == "a,1\nb,\n"


async def test_overwrite_replaces_atomically_and_keeps_mode(root: Path) -> None:
    """Overwriting keeps the file's permissions and leaves no temp file."""
    target = root / "keep.txt"
    target.write_text("old")
    target.chmod(0o640)
    await run(root, operation="write", path="keep.txt", content="new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(root) == []


@pytest.mark.parametrize(
    ("fmt", "content", "reason"),
    [
        ("json", {"a": {1, 2}}, "cannot be written as JSON"),
        ("json", float("nan"), "cannot be written as JSON"),
        ("text", {"a": 1}, "needs a string"),
        ("bytes", "***not base64***", "not valid base64"),
        ("csv", "a,b", "list of objects"),
        ("csv", [{"a": 1}, ["b"]], "not a mix"),
        ("lines", 5, "needs a list"),
    ],
)
async def test_bad_content_fails_before_touching_the_file(
    root: Path, fmt: str, content: Any, reason: str
) -> None:
    """Content that cannot be serialised fails with the old file intact and no temp file."""
    (root / "f").write_text("original")
    with pytest.raises(FileAccessError, match=reason) as e:
        await run(root, operation="write", path="f", format=fmt, content=content)
    assert e.value.retryable is False
    assert (root / "f").read_text() == "original"
    assert leftovers(root) == []


async def test_failing_rename_cleans_up_temp_file(root: Path) -> None:
    """When the final rename fails (target is a folder), the temp file is removed."""
    (root / "adir").mkdir()
    (root / "adir" / "inside.txt").write_text("x")
    with pytest.raises(FileAccessError, match="cannot write 'adir'"):
        await run(root, operation="write", path="adir", content="data")
    assert leftovers(root) == []
    assert (root / "adir" / "inside.txt").read_text() == "x"


async def test_append_text_jsonl_and_csv_header_once(root: Path) -> None:
    """append adds to the end; JSON becomes JSON Lines; CSV writes its header only once."""
    await run(root, operation="write", path="log.txt", content="a\n")
    await run(root, operation="write", path="log.txt", content="b\n", mode="append")
    assert (root / "log.txt").read_text() == "a\nb\n"

    for n in (1, 2):
        await run(
            root, operation="write", path="ev.jsonl", format="json", content={"n": n}, mode="append"
        )
    assert (root / "ev.jsonl").read_text() == '{"n":1}\n{"n":2}\n'

    for n in (1, 2):
        await run(
            root, operation="write", path="r.csv", format="csv", content=[{"n": n}], mode="append"
        )
    assert (root / "r.csv").read_text() == "n\n1\n2\n"


async def test_mkdirs(root: Path) -> None:
    """A missing parent folder is an error unless mkdirs is true."""
    with pytest.raises(FileAccessError, match="mkdirs: true"):
        await run(root, operation="write", path="a/b/c.txt", content="x")
    data = await run(root, operation="write", path="a/b/c.txt", content="x", mkdirs=True)
    assert data["path"] == "a/b/c.txt"
    assert (root / "a" / "b" / "c.txt").read_text() == "x"


async def test_write_through_symlink_inside_root(root: Path) -> None:
    """Writing to a symlink that stays inside the root updates its target, keeping the link."""
    (root / "real.txt").write_text("old")
    (root / "alias.txt").symlink_to(root / "real.txt")
    await run(root, operation="write", path="alias.txt", content="new")
    assert (root / "alias.txt").is_symlink()
    assert (root / "real.txt").read_text() == "new"


async def test_write_requires_content_and_valid_flags(root: Path) -> None:
    """Missing content and non-boolean flags are clear errors."""
    with pytest.raises(FileAccessError, match="'content' is required"):
        await run(root, operation="write", path="x")
    with pytest.raises(FileAccessError, match="'mkdirs' must be true or false"):
        await run(root, operation="write", path="d/x", content="y", mkdirs="yes")


# -- large files ---------------------------------------------------------------------------


async def test_large_file_read_and_write(root: Path) -> None:
    """A 20 MB file is written and read back whole, as text and as bytes."""
    line = "0123456789abcdef" * 4 + "\n"
    content = line * (20 * 1024 * 1024 // len(line))
    started = time.perf_counter()
    written = await run(root, operation="write", path="big.txt", content=content)
    assert written["bytes"] == len(content) >= 20_000_000
    back = await run(root, operation="read", path="big.txt")
    assert back["content"] == content
    raw = await run(root, operation="read", path="big.txt", format="bytes")
    assert len(base64.b64decode(raw["content"])) == len(content)
    assert time.perf_counter() - started < 10


# -- delete, exists, mkdir -----------------------------------------------------------------


async def test_delete_files_folders_and_links(root: Path, tmp_path: Path) -> None:
    """delete removes files, empty folders, trees with recursive, and links (not targets)."""
    (root / "f.txt").write_text("x")
    (root / "empty").mkdir()
    (root / "tree" / "sub").mkdir(parents=True)
    (root / "tree" / "sub" / "x").write_text("x")
    (root / "target.txt").write_text("t")
    (root / "link.txt").symlink_to(root / "target.txt")

    assert await run(root, operation="delete", path="f.txt") == {"path": "f.txt", "deleted": True}
    assert (await run(root, operation="delete", path="empty"))["deleted"] is True
    with pytest.raises(FileAccessError, match="not empty"):
        await run(root, operation="delete", path="tree")
    assert (await run(root, operation="delete", path="tree", recursive=True))["deleted"] is True
    await run(root, operation="delete", path="link.txt")
    assert not (root / "link.txt").exists() and (root / "target.txt").exists()
    assert not any(p.name in ("f.txt", "empty", "tree") for p in root.iterdir())


async def test_delete_missing_and_root(root: Path) -> None:
    """Deleting a missing path fails unless missing_ok; the root itself is never deleted."""
    with pytest.raises(FileAccessError, match="no such file"):
        await run(root, operation="delete", path="ghost")
    assert await run(root, operation="delete", path="ghost", missing_ok=True) == {
        "path": "ghost",
        "deleted": False,
    }
    for p in ("", ".", "a/.."):
        with pytest.raises(FileAccessError, match="files root itself"):
            await run(root, operation="delete", path=p, recursive=True)
    assert root.is_dir()


async def test_exists(root: Path) -> None:
    """exists reports files, folders and absence."""
    (root / "f").write_text("x")
    (root / "d").mkdir()
    assert await run(root, operation="exists", path="f") == {
        "path": "f",
        "exists": True,
        "kind": "file",
    }
    assert (await run(root, operation="exists", path="d"))["kind"] == "directory"
    assert await run(root, operation="exists", path="n/o") == {
        "path": "n/o",
        "exists": False,
        "kind": None,
    }


async def test_mkdir(root: Path) -> None:
    """mkdir creates parents, is fine when the folder exists, and fails on a file."""
    assert await run(root, operation="mkdir", path="x/y/z") == {"path": "x/y/z", "created": True}
    assert await run(root, operation="mkdir", path="x/y/z") == {"path": "x/y/z", "created": False}
    (root / "file").write_text("")
    with pytest.raises(FileAccessError, match="a file is in the way"):
        await run(root, operation="mkdir", path="file")


# -- list ----------------------------------------------------------------------------------


async def test_list_with_globs(root: Path, tmp_path: Path) -> None:
    """list returns sorted root-relative paths with kind, size and ISO mtime, skipping escapes."""
    (root / "in" / "deep").mkdir(parents=True)
    (root / "in" / "b.csv").write_text("12345")
    (root / "in" / "a.csv").write_text("1")
    (root / "in" / "note.txt").write_text("n")
    (root / "in" / "deep" / "c.csv").write_text("22")
    (root / "in" / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "in" / "out.csv").symlink_to(tmp_path / "outside" / "secret.txt")

    data = await run(root, operation="list", path="in/*.csv")
    assert data["path"] == "in" and data["pattern"] == "*.csv" and data["count"] == 2
    assert [f["path"] for f in data["files"]] == ["in/a.csv", "in/b.csv"]
    assert data["files"][1]["size"] == 5 and data["files"][1]["kind"] == "file"
    assert data["files"][0]["mtime"].endswith("+00:00")

    deep = await run(root, operation="list", path="in", pattern="**/*.csv")
    assert [f["path"] for f in deep["files"]] == ["in/a.csv", "in/b.csv", "in/deep/c.csv"]

    everything = await run(root, operation="list", path="in")
    assert [f["path"] for f in everything["files"]] == [
        "in/a.csv",
        "in/b.csv",
        "in/deep",
        "in/note.txt",
    ]
    assert everything["files"][2] == {**everything["files"][2], "kind": "directory", "size": None}

    via_link = await run(root, operation="list", path="in/*/*.txt")
    assert via_link["files"] == []


async def test_list_refusals(root: Path) -> None:
    """list refuses escaping patterns and reports a missing folder."""
    with pytest.raises(FileAccessError, match="refused"):
        await run(root, operation="list", path=".", pattern="../*")
    with pytest.raises(FileAccessError, match="refused"):
        await run(root, operation="list", path="../*")
    with pytest.raises(FileAccessError, match="does not exist"):
        await run(root, operation="list", path="nope/*.txt")


# -- move, copy ----------------------------------------------------------------------------


async def test_move_and_copy_files_and_folders(root: Path) -> None:
    """move renames, copy duplicates (files and folders); destinations need overwrite to replace."""
    (root / "a.txt").write_text("A")
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "sub" / "f").write_text("F")

    assert await run(root, operation="copy", path="a.txt", destination="b.txt") == {
        "path": "a.txt",
        "destination": "b.txt",
        "kind": "file",
    }
    assert (root / "a.txt").read_text() == (root / "b.txt").read_text() == "A"
    with pytest.raises(FileAccessError, match="already exists"):
        await run(root, operation="copy", path="a.txt", destination="b.txt")
    (root / "a.txt").write_text("A2")
    await run(root, operation="copy", path="a.txt", destination="b.txt", overwrite=True)
    assert (root / "b.txt").read_text() == "A2"

    await run(root, operation="move", path="b.txt", destination="moved/c.txt", mkdirs=True)
    assert not (root / "b.txt").exists() and (root / "moved" / "c.txt").read_text() == "A2"

    copied = await run(root, operation="copy", path="dir", destination="dir2")
    assert copied["kind"] == "directory" and (root / "dir2" / "sub" / "f").read_text() == "F"
    await run(root, operation="move", path="dir2", destination="dir", overwrite=True)
    assert not (root / "dir2").exists() and (root / "dir" / "sub" / "f").read_text() == "F"
    assert leftovers(root) == []


async def test_move_errors(root: Path) -> None:
    """Moving a missing source, onto a folder, or the root itself fails clearly."""
    (root / "f").write_text("x")
    (root / "d").mkdir()
    with pytest.raises(FileAccessError, match="no such file"):
        await run(root, operation="move", path="ghost", destination="g2")
    with pytest.raises(FileAccessError, match="over the folder"):
        await run(root, operation="move", path="f", destination="d", overwrite=True)
    with pytest.raises(FileAccessError, match="files root itself"):
        await run(root, operation="move", path=".", destination="elsewhere")
    with pytest.raises(FileAccessError, match="mkdirs"):
        await run(root, operation="copy", path="f", destination="no/such/dir/f")


# -- confinement ---------------------------------------------------------------------------

ESCAPES = [
    "../x",
    "../outside/secret.txt",
    "/etc/passwd",
    "a/../../x",
    "nul\x00byte",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "\\\\server\\share\\x",
    "..\\outside\\secret.txt",
]


@pytest.mark.parametrize("path", ESCAPES)
@pytest.mark.parametrize(
    "config",
    [
        {"operation": "read"},
        {"operation": "write", "content": "pwned", "mkdirs": True},
        {"operation": "delete", "recursive": True},
        {"operation": "exists"},
        {"operation": "list"},
        {"operation": "mkdir"},
        {"operation": "copy", "destination": "copy.txt"},
    ],
)
async def test_traversal_refused_for_every_operation(
    root: Path, path: str, config: dict[str, Any]
) -> None:
    """Escaping paths are refused by every operation, naming the path."""
    with pytest.raises(FileAccessError) as e:
        await run(root, path=path, **config)
    assert "refused" in str(e.value)
    assert e.value.retryable is False


@pytest.mark.parametrize("operation", ["move", "copy"])
async def test_destination_traversal_refused(root: Path, tmp_path: Path, operation: str) -> None:
    """A destination outside the root is refused and nothing moves."""
    (root / "f").write_text("x")
    with pytest.raises(FileAccessError, match="refused"):
        await run(root, operation=operation, path="f", destination="../outside/stolen")
    assert (root / "f").exists() and not (tmp_path / "outside" / "stolen").exists()


async def test_symlinks_out_of_root_refused(root: Path, tmp_path: Path) -> None:
    """A file symlink and a folder symlink pointing outside are refused for read and write."""
    (root / "leak.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    for config in (
        {"operation": "read", "path": "leak.txt"},
        {"operation": "read", "path": "out/secret.txt"},
        {"operation": "write", "path": "leak.txt", "content": "x"},
        {"operation": "write", "path": "out/new.txt", "content": "x"},
        {"operation": "write", "path": "out/deeper/new.txt", "content": "x", "mkdirs": True},
        {"operation": "list", "path": "out/*"},
        {"operation": "delete", "path": "out/secret.txt"},
        {"operation": "copy", "path": "leak.txt", "destination": "copied.txt"},
    ):
        with pytest.raises(FileAccessError, match="symlink"):
            await run(root, **config)
    assert (tmp_path / "outside" / "secret.txt").read_text() == "top secret"
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.txt"]


def test_check_refuses_literal_escapes_at_validation() -> None:
    """check() reports literal escaping paths with their JSON path; templates are left alone."""
    problems = File.check(
        {"operation": "copy", "path": "/etc/passwd", "destination": "{{ $params.d }}"},
        "nodes.f.config",
    )
    assert [p.path for p in problems] == ["nodes.f.config.path"]
    assert (
        File.check({"operation": "list", "path": "a", "pattern": "../*"}, "")[0].path == "pattern"
    )
    assert File.check({"operation": "read", "path": "ok/file.txt"}, "x") == []


def test_schema() -> None:
    """The schema is valid, requires content for write and destination for move/copy."""
    jsonschema.Draft202012Validator.check_schema(File.config_schema)
    v = jsonschema.Draft202012Validator(File.config_schema)
    assert list(v.iter_errors({"operation": "read", "path": "a", "format": "json"})) == []
    messages = [e.message for e in v.iter_errors({"operation": "write", "path": "a"})]
    assert messages == ["'content' is a required property"]
    messages = [e.message for e in v.iter_errors({"operation": "move", "path": "a"})]
    assert messages == ["'destination' is a required property"]
    templated = {"operation": "write", "path": "a", "content": 1, "mkdirs": "{{ $params.m }}"}
    assert list(v.iter_errors(templated)) == []
    messages = sorted(e.message for e in v.iter_errors({"operation": "zap", "path": "a", "x": 1}))
    assert messages[0].startswith("'zap' is not one of ['read', 'write'")
    assert messages[1] == "Additional properties are not allowed ('x' was unexpected)"


async def test_default_root_is_the_context_files_root(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block uses ctx.files_root, not the working directory."""
    (root / "here.txt").write_text("root")
    monkeypatch.chdir(root.parent)
    data = await run(root, operation="read", path="here.txt")
    assert data["content"] == "root"
    assert json.dumps(data)  # data is plain JSON
    assert not os.path.exists(root.parent / "here.txt")


# -- artifacts (with a store) ------------------------------------------------------------------


async def test_with_a_store_written_files_are_artifacts_and_failures_only_warn(
    tmp_path: Path,
) -> None:
    """A run with a store records the file; a run the store does not hold only logs a warning."""
    from conv3n_jupyter.engine import Runtime
    from conv3n_jupyter.engine import run as run_workflow
    from conv3n_jupyter.store import open_store
    from conv3n_jupyter.store.executions import create_execution
    from conv3n_jupyter.store.maintenance import list_artifacts

    files = tmp_path / "files"
    files.mkdir()
    wf = {
        "name": "w",
        "nodes": {
            "save": {
                "type": "std/file",
                "config": {"operation": "write", "path": "a.txt", "content": "hi"},
            }
        },
    }
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        eid = create_execution(store, workflow_name="w")
        async with Runtime(store=store, files_root=files) as runtime:
            recorded = await run_workflow(wf, runtime=runtime, execution_id=eid)
            unknown = await run_workflow(wf, runtime=runtime, execution_id="not-in-the-store")
        rows = list_artifacts(store, eid)
    finally:
        store.close()
    assert recorded["status"] == "success"
    assert [(r["name"], r["size"], r["node_id"]) for r in rows] == [("a.txt", 2, "save")]
    assert rows[0]["path"] == str(files.resolve() / "a.txt")
    assert not recorded["nodes"]["save"].get("logs")
    assert unknown["status"] == "success" and (files / "a.txt").read_text() == "hi"
    [warning] = unknown["nodes"]["save"]["logs"]
    assert warning["level"] == "warning"
    assert "not-in-the-store" in warning["message"] and "a.txt" in warning["message"]
