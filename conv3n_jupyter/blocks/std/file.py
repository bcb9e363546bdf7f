"""``std/file``: read, write, list and manage files inside the files root.

Every path (``path``, ``destination``, and globs for ``list``) is relative to the files root
(``$CONV3N_FILES_ROOT``, default the working directory) and refused when it would leave it:
absolute paths, ``..`` escapes and symlinks out of the root (see :mod:`conv3n_jupyter._paths`).

Data by ``operation`` (``path`` is always the root-relative path, POSIX style):

* ``read`` → ``{"path", "format", "size", "content"}``; ``content`` by ``format``: ``text`` a
  string, ``json`` the parsed value, ``csv`` a list of objects keyed by the header row (extra
  cells under ``"_extra"``, missing cells null), ``bytes`` base64 text, ``lines`` a list of
  strings without line endings.
* ``write`` → ``{"path", "bytes", "mode"}``: ``content`` serialised by ``format`` (default
  ``text`` for a string, ``json`` otherwise). ``overwrite`` is atomic: a temp file in the same
  folder, flushed and fsynced, then renamed over the target, so readers see the old or the new
  file, never a part. ``append`` is one write call on a file opened for appending (not atomic
  by rename); with ``json`` it appends one compact document per line (JSON Lines), with
  ``csv`` the header is written only when the file is new or empty.
* ``delete`` → ``{"path", "deleted"}`` (folders need ``recursive`` unless empty).
* ``exists`` → ``{"path", "exists", "kind"}`` with ``kind`` ``file``, ``directory`` or null.
* ``list`` → ``{"path", "pattern", "count", "files": [{"path", "kind", "size", "mtime"}]}``,
  sorted by path; the glob is in ``path`` (``"inbox/*.csv"``, ``"**/*.json"``) or in
  ``pattern`` with ``path`` the folder. ``mtime`` is ISO 8601 UTC.
* ``move``/``copy`` → ``{"path", "destination", "kind"}`` (``destination`` is the full new
  path; an existing one is replaced only with ``overwrite``).
* ``mkdir`` → ``{"path", "created"}`` (parents included; an existing folder is fine).

With a store (``conv3n serve``, ``conv3n run --store``) every file written, copied or moved
into is recorded as an artifact of the execution (see :mod:`._file_artifacts`).

    {"type": "std/file", "config": {"operation": "write", "path": "out/{{ $params.day }}.json",
                                    "content": "{{ $node.fetch.data.body }}", "mkdirs": true}}
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import errno
import io
import json
import os
import secrets
import shutil
import stat
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..._paths import path_problem, relative_to_root, resolve_inside
from ...errors import FileAccessError, Problem
from ..base import Block, NodeContext, Output
from ._file_artifacts import record_outputs

_PRODUCING = frozenset({"write", "copy", "move"})  # recorded as artifacts (with a store)
OPERATIONS = ("read", "write", "delete", "exists", "list", "move", "copy", "mkdir")
FORMATS = ("text", "json", "csv", "bytes", "lines")
_GLOB_CHARS = frozenset("*?[")
_BOOL_OR_EXPR = ["boolean", "string"]


def _requires(operations: list[str], keys: list[str]) -> dict[str, Any]:
    return {"if": {"properties": {"operation": {"enum": operations}}}, "then": {"required": keys}}


class File(Block):
    """Read, write, delete, list, move, copy files and make folders, confined to the files root."""

    type = "std/file"
    title = "File"
    description = "Read, write, list, move, copy or delete files inside the files root."
    icon = "🗎"
    config_schema = {
        "type": "object",
        "properties": {
            "operation": {"enum": list(OPERATIONS), "description": "what to do"},
            "path": {
                "type": "string",
                "description": "path relative to the files root; for `list`, a folder or a glob "
                "such as `inbox/*.csv` or `**/*.json`",
            },
            "format": {
                "enum": list(FORMATS),
                "description": "read/write: text, json, csv (list of objects), bytes (base64) or "
                "lines; default text (write: text for a string, json otherwise)",
            },
            "encoding": {"type": "string", "default": "utf-8", "description": "text encoding"},
            "content": {"description": "write: the data to write, serialised by `format`"},
            "mode": {
                "enum": ["overwrite", "append"],
                "default": "overwrite",
                "description": "write: replace the file atomically, or append to it",
            },
            "mkdirs": {
                "type": _BOOL_OR_EXPR,
                "default": False,
                "description": "write/move/copy: create missing parent folders",
            },
            "destination": {"type": "string", "description": "move/copy: the new path"},
            "overwrite": {
                "type": _BOOL_OR_EXPR,
                "default": False,
                "description": "move/copy: replace an existing destination",
            },
            "pattern": {
                "type": "string",
                "description": "list: glob inside the folder `path` (default `*`)",
            },
            "recursive": {
                "type": _BOOL_OR_EXPR,
                "default": False,
                "description": "delete: remove a folder with everything in it",
            },
            "missing_ok": {
                "type": _BOOL_OR_EXPR,
                "default": False,
                "description": "delete: succeed (deleted: false) when the path does not exist",
            },
            "delimiter": {
                "type": "string",
                "minLength": 1,
                "maxLength": 1,
                "default": ",",
                "description": "csv: the field delimiter",
            },
            "indent": {
                "type": ["integer", "null", "string"],
                "default": 2,
                "description": "write json: indentation (null for one line)",
            },
        },
        "required": ["operation", "path"],
        "additionalProperties": False,
        "allOf": [_requires(["write"], ["content"]), _requires(["move", "copy"], ["destination"])],
    }
    ports = ("default",)

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        """Refuse literal paths that leave the files root (absolute, ``..``, NUL) at load time."""
        problems = []
        for key in ("path", "destination", "pattern"):
            value = config.get(key)
            if isinstance(value, str) and "{{" not in value:
                reason = path_problem(value)
                if (
                    reason is None
                    and key == "pattern"
                    and ".." in value.replace("\\", "/").split("/")
                ):
                    reason = "'..' is not allowed in a pattern"
                if reason is not None:
                    problems.append(Problem(f"{path}.{key}" if path else key, reason, key=key))
        return problems

    async def run(self, ctx: NodeContext) -> Output:
        config = ctx.config
        operation = config.get("operation", "read")
        handler = _HANDLERS.get(operation)
        if handler is None:
            raise _error(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
        call = _Call(Path(os.path.realpath(ctx.files_root)), config)
        try:
            if _is_quick(call, operation):
                data = handler(call)
            else:
                data = await asyncio.to_thread(handler, call)
        except FileAccessError as exc:
            exc.block_type = exc.block_type or self.type
            raise
        except OSError as exc:
            raise _os_error(exc, str(operation), str(config.get("path"))) from exc
        if operation in _PRODUCING:
            await record_outputs(ctx, call.root, operation, data)
        return Output(data)


# -- helpers -----------------------------------------------------------------------------------

# Measured here: a small read takes ~50 µs inline and ~200 µs through asyncio.to_thread, so
# checks and small reads stay on the event loop; writes (fsync, ~1 ms), large reads, listings
# and tree operations go to a worker thread.
_QUICK_READ_BYTES = 1 << 20


def _is_quick(call: _Call, operation: str) -> bool:
    if operation == "exists":
        return True
    if operation != "read":
        return False
    path, _rel = call.path()
    try:
        return path.stat().st_size <= _QUICK_READ_BYTES
    except OSError:
        return True  # the read itself reports the error at once


class _Call:
    """One operation's root and config, with typed accessors that raise clear errors."""

    __slots__ = ("config", "root")

    def __init__(self, root: Path, config: Mapping[str, Any]) -> None:
        self.root = root
        self.config = config

    def path(self, key: str = "path") -> tuple[Path, str]:
        value = self.config.get(key)
        if not isinstance(value, str):
            raise _error(f"'{key}' must be a string, not {type(value).__name__}")
        resolved = resolve_inside(self.root, value)
        return resolved, relative_to_root(self.root, resolved)

    def flag(self, key: str) -> bool:
        value = self.config.get(key, False)
        if not isinstance(value, bool):
            raise _error(f"'{key}' must be true or false, not {value!r}")
        return value

    def text(self, key: str, default: str) -> str:
        value = self.config.get(key, default)
        if not isinstance(value, str):
            raise _error(f"'{key}' must be a string, not {type(value).__name__}")
        return value

    def format(self, default: str) -> str:
        fmt = self.config.get("format") or default
        if fmt not in FORMATS:
            raise _error(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        return str(fmt)

    def encoding(self) -> str:
        encoding = self.text("encoding", "utf-8")
        try:
            "".encode(encoding)
        except LookupError:
            raise _error(f"unknown encoding {encoding!r}") from None
        return encoding


def _error(message: str, *, retryable: bool = False, path: str | None = None) -> FileAccessError:
    details = {"path": path} if path is not None else None
    return FileAccessError(message, block_type=File.type, retryable=retryable, details=details)


def _os_error(exc: OSError, action: str, rel: str) -> FileAccessError:
    """Map an OSError to a FileAccessError naming the path; only odd I/O failures are retryable."""
    if isinstance(exc, FileNotFoundError):
        reason, retryable = "no such file or folder", False
    elif isinstance(exc, IsADirectoryError):
        reason, retryable = "it is a folder", False
    elif isinstance(exc, NotADirectoryError):
        reason, retryable = "a part of the path is not a folder", False
    elif isinstance(exc, PermissionError):
        reason, retryable = "permission denied", False
    elif isinstance(exc, FileExistsError):
        reason, retryable = "it already exists", False
    else:
        reason, retryable = exc.strerror or str(exc), True
    return _error(f"cannot {action} {rel!r}: {reason}", retryable=retryable, path=rel)


def _kind(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "other"


def _real(path: Path) -> Path:
    """The real location of ``path`` (``resolve_inside`` checked it is inside the root)."""
    return Path(os.path.realpath(path))


def _make_parents(call: _Call, target: Path, rel: str) -> None:
    parent = target.parent
    if call.flag("mkdirs"):
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, "create the folder for", rel) from exc
    elif not parent.is_dir():
        raise _error(
            f"cannot write {rel!r}: its folder does not exist (set mkdirs: true to create it)",
            path=rel,
        )


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``target``, fsync, then rename it over ``target``."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # 0o666 lets the umask decide the new file's mode, as for any normally created file.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            temp.chmod(stat.S_IMODE(target.stat().st_mode))
        except FileNotFoundError:
            pass
        temp.replace(target)
    except BaseException:
        try:
            temp.unlink()
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)


# -- read --------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str, rel: str, strip_bom: bool) -> str:
    if strip_bom and encoding.replace("_", "-").lower() in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _error(
            f"{rel!r} is not valid {encoding} text (byte {exc.start}); "
            "use format 'bytes' for binary files",
            path=rel,
        ) from None


def _parse_csv(text: str, delimiter: str, rel: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, restkey="_extra")
    try:
        return list(reader)
    except csv.Error as exc:
        # DictReader.line_num lags behind on errors; the inner reader's count is the failing line.
        line = reader.reader.line_num
        raise _error(f"{rel!r}: invalid CSV at line {line}: {exc}", path=rel) from None


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read(call: _Call) -> dict[str, Any]:
    path, rel = call.path()
    fmt = call.format("text")
    encoding = call.encoding()
    delimiter = call.text("delimiter", ",")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _os_error(exc, "read", rel) from exc
    content: Any
    if fmt == "bytes":
        content = base64.b64encode(data).decode("ascii")
    else:
        text = _decode(data, encoding, rel, strip_bom=fmt in ("json", "csv"))
        if fmt == "json":
            try:
                content = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _error(
                    f"{rel!r}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                    path=rel,
                ) from None
        elif fmt == "csv":
            content = _parse_csv(text, delimiter, rel)
        elif fmt == "lines":
            content = _split_lines(text)
        else:
            content = text
    return {"path": rel, "format": fmt, "size": len(data), "content": content}


# -- write -------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _csv_text(content: Any, delimiter: str, header: bool) -> str:
    if not isinstance(content, list):
        raise _error(
            f"format 'csv' needs a list of objects or of lists, not {type(content).__name__}"
        )
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    if all(isinstance(row, dict) for row in content):
        columns = list(dict.fromkeys(key for row in content for key in row))
        if header and columns:
            writer.writerow(columns)
        for row in content:
            writer.writerow([_csv_cell(row.get(col)) for col in columns])
    elif all(isinstance(row, list) for row in content):
        for row in content:
            writer.writerow([_csv_cell(cell) for cell in row])
    else:
        raise _error("format 'csv' needs a list of objects or a list of lists, not a mix")
    return out.getvalue()


def _encode(call: _Call, content: Any, fmt: str, append: bool, empty: bool) -> bytes:
    """Serialise ``content``; every data error is raised here, before the file is touched."""
    if fmt == "bytes":
        if not isinstance(content, str):
            raise _error(f"format 'bytes' needs base64 text, not {type(content).__name__}")
        try:
            return base64.b64decode(content, validate=True)
        except binascii.Error as exc:
            raise _error(f"content is not valid base64: {exc}") from None
    if fmt == "text":
        if not isinstance(content, str):
            raise _error(
                f"format 'text' needs a string, not {type(content).__name__}; use format 'json'"
            )
        text = content
    elif fmt == "json":
        indent = call.config.get("indent", 2)
        if indent is not None and (not isinstance(indent, int) or isinstance(indent, bool)):
            raise _error(f"'indent' must be a whole number or null, not {indent!r}")
        try:
            if append:
                text = json.dumps(
                    content, ensure_ascii=False, allow_nan=False, separators=(",", ":")
                )
            else:
                text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=indent)
        except (TypeError, ValueError) as exc:
            raise _error(f"content cannot be written as JSON: {exc}") from None
        text += "\n"
    elif fmt == "csv":
        text = _csv_text(content, call.text("delimiter", ","), header=not append or empty)
    else:  # lines
        items = [content] if isinstance(content, str) else content
        if not isinstance(items, list):
            raise _error(f"format 'lines' needs a list, not {type(content).__name__}")
        text = "".join(
            (item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)) + "\n"
            for item in items
        )
    try:
        return text.encode(call.encoding())
    except UnicodeEncodeError as exc:
        raise _error(f"content cannot be encoded as {exc.encoding}: {exc.reason}") from None


def _write(call: _Call) -> dict[str, Any]:
    path, rel = call.path()
    if "content" not in call.config:
        raise _error("'content' is required to write")
    content = call.config["content"]
    mode = call.config.get("mode", "overwrite")
    if mode not in ("overwrite", "append"):
        raise _error(f"'mode' must be 'overwrite' or 'append', not {mode!r}")
    fmt = call.format("text" if isinstance(content, str) else "json")
    append = mode == "append"
    target = _real(path)  # write through a symlink that stays inside the root
    empty = True
    if append:
        try:
            empty = target.stat().st_size == 0
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _os_error(exc, "write", rel) from exc
    data = _encode(call, content, fmt, append, empty)
    _make_parents(call, target, rel)
    try:
        if append:
            with open(target, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        else:
            _atomic_write(target, data)
    except OSError as exc:
        raise _os_error(exc, "write", rel) from exc
    return {"path": rel, "bytes": len(data), "mode": mode}


# -- the others --------------------------------------------------------------------------------


def _delete(call: _Call) -> dict[str, Any]:
    path, rel = call.path()
    if rel == ".":
        raise _error("cannot delete the files root itself", path=rel)
    try:
        info = path.lstat()
    except FileNotFoundError:
        if call.flag("missing_ok"):
            return {"path": rel, "deleted": False}
        raise _error(f"cannot delete {rel!r}: no such file or folder", path=rel) from None
    except OSError as exc:
        raise _os_error(exc, "delete", rel) from exc
    try:
        if not stat.S_ISDIR(info.st_mode):
            path.unlink()  # a file, or a symlink itself (never its target)
        elif call.flag("recursive"):
            shutil.rmtree(path)
        else:
            try:
                path.rmdir()
            except OSError as exc:
                if path.is_dir() and any(path.iterdir()):
                    raise _error(
                        f"cannot delete {rel!r}: the folder is not empty (set recursive: true)",
                        path=rel,
                    ) from exc
                raise
    except OSError as exc:
        raise _os_error(exc, "delete", rel) from exc
    return {"path": rel, "deleted": True}


def _exists(call: _Call) -> dict[str, Any]:
    path, rel = call.path()
    kind = _kind(path)
    return {"path": rel, "exists": kind is not None, "kind": kind}


def _split_glob(call: _Call) -> tuple[str, str]:
    """(folder, glob) from ``path`` and ``pattern``."""
    raw = call.text("path", ".")
    pattern = call.config.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise _error("'pattern' must be a non-empty string")
        return raw, pattern
    parts = raw.replace("\\", "/").split("/")
    first_glob = next((i for i, p in enumerate(parts) if _GLOB_CHARS & set(p)), None)
    if first_glob is None:
        return raw, "*"
    return "/".join(parts[:first_glob]) or ".", "/".join(parts[first_glob:])


def _list(call: _Call) -> dict[str, Any]:
    folder, pattern = _split_glob(call)
    reason = path_problem(pattern)
    if reason is None and ".." in pattern.split("/"):
        reason = "'..' is not allowed in a pattern"
    if reason is not None:
        raise _error(f"pattern {pattern!r} refused: {reason}", path=pattern)
    base = resolve_inside(call.root, folder)
    base_rel = relative_to_root(call.root, base)
    if not base.is_dir():
        what = "is not a folder" if base.exists() else "does not exist"
        raise _error(f"cannot list {base_rel!r}: the folder {what}", path=base_rel)
    files: list[dict[str, Any]] = []
    try:
        for found in base.glob(pattern):
            real = _real(found)
            if not real.is_relative_to(call.root):
                continue  # a symlink out of the root: not listed
            try:
                info = found.stat()
            except FileNotFoundError:
                continue  # removed while listing
            is_dir = stat.S_ISDIR(info.st_mode)
            files.append(
                {
                    "path": relative_to_root(call.root, found),
                    "kind": "directory" if is_dir else "file",
                    "size": None if is_dir else info.st_size,
                    "mtime": datetime.fromtimestamp(info.st_mtime, tz=timezone.utc).isoformat(),
                }
            )
    except OSError as exc:
        raise _os_error(exc, "list", base_rel) from exc
    except ValueError as exc:  # pathlib rejects some patterns ("**a", empty)
        raise _error(f"invalid pattern {pattern!r}: {exc}", path=pattern) from None
    files.sort(key=lambda f: f["path"])
    return {"path": base_rel, "pattern": pattern, "count": len(files), "files": files}


def _transfer(call: _Call, move: bool) -> dict[str, Any]:
    action = "move" if move else "copy"
    src, src_rel = call.path()
    dst, dst_rel = call.path("destination")
    if src_rel == "." or dst_rel == ".":
        raise _error(f"cannot {action} the files root itself", path=".")
    kind = _kind(src)
    if kind is None and not src.is_symlink():
        raise _error(f"cannot {action} {src_rel!r}: no such file or folder", path=src_rel)
    if dst.exists() or dst.is_symlink():
        if not call.flag("overwrite"):
            raise _error(
                f"cannot {action} to {dst_rel!r}: it already exists (set overwrite: true)",
                path=dst_rel,
            )
        if dst.is_dir() and kind != "directory":
            raise _error(f"cannot {action} a file over the folder {dst_rel!r}", path=dst_rel)
        replace_first = kind == "directory"
    else:
        replace_first = False
    _make_parents(call, dst, dst_rel)
    try:
        if replace_first:  # a folder cannot be renamed or copied over an existing path
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            else:
                dst.unlink()
        if move:
            try:
                src.replace(dst)
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # another file system: copy, then delete
                    raise
                shutil.move(src, dst)
        elif kind == "directory":
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        else:
            temp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.tmp")
            try:
                shutil.copyfile(src, temp)
                shutil.copymode(src, temp)
                temp.replace(dst)
            except BaseException:
                try:
                    temp.unlink()
                except FileNotFoundError:
                    pass
                raise
    except OSError as exc:
        raise _os_error(exc, action, src_rel) from exc
    return {"path": src_rel, "destination": dst_rel, "kind": kind or "file"}


def _move(call: _Call) -> dict[str, Any]:
    return _transfer(call, move=True)


def _copy(call: _Call) -> dict[str, Any]:
    return _transfer(call, move=False)


def _mkdir(call: _Call) -> dict[str, Any]:
    path, rel = call.path()
    kind = _kind(path)
    if kind == "directory":
        return {"path": rel, "created": False}
    if kind is not None:
        raise _error(f"cannot make folder {rel!r}: a file is in the way", path=rel)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(exc, "make folder", rel) from exc
    return {"path": rel, "created": True}


_HANDLERS = {
    "read": _read,
    "write": _write,
    "delete": _delete,
    "exists": _exists,
    "list": _list,
    "move": _move,
    "copy": _copy,
    "mkdir": _mkdir,
}
