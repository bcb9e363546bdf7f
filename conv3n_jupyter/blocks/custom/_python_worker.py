"""The worker process of ``custom/code``: runs users' Python code, one call at a time.

The host starts it as ``python -c BOOTSTRAP THIS_FILE MEMORY_LIMIT_BYTES PARENT_PID``, the
bootstrap executing this file as ``__main__`` (or as ``python -m
conv3n_jupyter.blocks.custom._python_worker MEMORY_LIMIT_BYTES PARENT_PID``), and speaks to it
over stdin and stdout with messages framed as a 4-byte big-endian length followed by UTF-8
JSON. This module imports only the standard library, so a worker starts in about 30 ms.

Messages, host to worker: ``{"code", "filename", "input", "ctx": {"params", "vars", "nodes",
"node_id", "execution_id"}}``. Worker to host: first ``{"ready": true, "pid"}``, then per call
``{"ok": true, "data", "logs"}`` or ``{"ok": false, "error": {"type", "message", "line",
"stack", "retryable"?}, "logs", "retire"?}``. On SIGTERM during a call (the host's time limit)
the worker writes ``{"ok": false, "terminated": true, "line", "stack", "logs"}`` and exits.
``logs`` is a list of ``[level, message]``.
"""

from __future__ import annotations

import sys

# With ``-c`` the working folder (the files root) comes first on sys.path; a ``json.py`` there
# must not replace the standard library's, so it goes before anything else is imported.
if __name__ == "__main__" and sys.path and sys.path[0] in ("", "."):
    del sys.path[0]

import builtins
import faulthandler
import io
import json
import linecache
import math
import os
import signal
import types
from typing import Any

_MAX_LOG_CHARS = 1_000_000
_MAX_LOG_LINES = 10_000
_CODE_CACHE_SIZE = 256

_proto_in = 0
_proto_out = 1
_memory_limit_mb = 0
_code_cache: dict[tuple[str, str], types.CodeType] = {}
_current: _Call | None = None  # the call running user code right now, for the SIGTERM handler


# -- framing ---------------------------------------------------------------------------------


def _read_exact(n: int) -> bytes | None:
    chunks = []
    while n > 0:
        chunk = os.read(_proto_in, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_message() -> Any:
    header = _read_exact(4)
    if header is None:
        return None
    body = _read_exact(int.from_bytes(header, "big"))
    if body is None:
        return None
    return json.loads(body)


def _write_raw(body: bytes) -> None:
    view = memoryview(len(body).to_bytes(4, "big") + body)
    while view:
        written = os.write(_proto_out, view)
        view = view[written:]


def _write_message(message: Any) -> None:
    _write_raw(json.dumps(message).encode())


# -- the user's view: ctx, captured output ---------------------------------------------------


class _Logs:
    """Log lines of one call, capped so that a chatty loop cannot exhaust the host."""

    def __init__(self) -> None:
        self.entries: list[list[str]] = []
        self.chars = 0
        self.dropped = 0

    def add(self, level: str, message: str) -> None:
        if len(self.entries) >= _MAX_LOG_LINES or self.chars + len(message) > _MAX_LOG_CHARS:
            self.dropped += len(message)
            return
        self.chars += len(message)
        self.entries.append([level, message])

    def finish(self) -> list[list[str]]:
        if self.dropped:
            note = f"... {self.dropped} more characters of output were dropped"
            self.entries.append(["warning", note])
            self.dropped = 0
        return self.entries


class _Capture(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr during a call: each line becomes a log entry."""

    def __init__(self, logs: _Logs, level: str) -> None:
        self._logs = logs
        self._level = level
        self._partial = ""

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if "\n" not in text:
            self._partial += text
            return len(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._logs.add(self._level, line)
        return len(text)

    def drain(self) -> None:
        if self._partial:
            self._logs.add(self._level, self._partial)
            self._partial = ""


class Context:
    """The ``ctx`` that ``main(input, ctx)`` receives.

    ``params``, ``vars`` and ``secrets`` are plain dicts; changing ``vars`` here does not change
    the execution's variables (use ``std/set_var``). ``node(id)`` gives an upstream node's data.
    """

    __slots__ = ("_logs", "_nodes", "execution_id", "node_id", "params", "secrets", "vars")

    def __init__(self, payload: dict[str, Any], logs: _Logs) -> None:
        self.params: dict[str, Any] = payload.get("params") or {}
        self.vars: dict[str, Any] = payload.get("vars") or {}
        self.secrets: dict[str, Any] = {}
        self.node_id: str = payload.get("node_id", "")
        self.execution_id: str = payload.get("execution_id", "")
        self._nodes: dict[str, Any] = payload.get("nodes") or {}
        self._logs = logs

    def node(self, node_id: str) -> Any:
        """The data of the upstream node ``node_id``."""
        if node_id not in self._nodes:
            known = ", ".join(sorted(self._nodes)) or "none"
            raise KeyError(f"no upstream node {node_id!r} (upstream nodes: {known})")
        return self._nodes[node_id]

    def log(self, *parts: Any, level: str = "info") -> None:
        """Add a line to the node's logs."""
        self._logs.add(str(level), " ".join(str(p) for p in parts))

    def __repr__(self) -> str:
        return f"<ctx node={self.node_id!r} execution={self.execution_id!r}>"


# -- running a call ----------------------------------------------------------------------------


class _Call:
    def __init__(self, filename: str, logs: _Logs, stdout: _Capture, stderr: _Capture) -> None:
        self.filename = filename
        self.logs = logs
        self.stdout = stdout
        self.stderr = stderr

    def finish_logs(self) -> list[list[str]]:
        self.stdout.drain()
        self.stderr.drain()
        return self.logs.finish()


def _compile(code: str, filename: str) -> types.CodeType:
    key = (filename, code)
    compiled = _code_cache.get(key)
    if compiled is None:
        compiled = compile(code, filename, "exec", dont_inherit=True)
        if len(_code_cache) >= _CODE_CACHE_SIZE:
            del _code_cache[next(iter(_code_cache))]
        _code_cache[key] = compiled
        lines = code.splitlines(keepends=True)
        linecache.cache[filename] = (len(code), None, lines, filename)
    return compiled


def _source_line(filename: str, lineno: int) -> str:
    return linecache.getline(filename, lineno).strip()


def _format_frames(frames: list[tuple[str, int, str]]) -> list[str]:
    out = []
    for filename, lineno, name in frames:
        out.append(f'  File "{filename}", line {lineno}, in {name}\n')
        text = _source_line(filename, lineno)
        if text:
            out.append(f"    {text}\n")
    return out


def _user_frames(tb: types.TracebackType | None, filename: str) -> list[tuple[str, int, str]]:
    """The user's frames of a traceback; their locals are released at once (MemoryError)."""
    frames = []
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename == filename:
            frames.append((filename, tb.tb_lineno, frame.f_code.co_name))
            try:
                frame.clear()
            except RuntimeError:  # still executing (a generator the user kept alive)
                pass
        tb = tb.tb_next
    return frames


def _exception_only(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, SyntaxError):
        text = f"{name}: {exc.msg}"
    else:
        try:
            detail = str(exc)
        except Exception:  # a broken __str__ in user code must not break the report
            detail = "<exception str() failed>"
        text = f"{name}: {detail}" if detail else name
    return text


def _syntax_lines(exc: SyntaxError, filename: str) -> list[str]:
    out = [f'  File "{filename}", line {exc.lineno}\n']
    text = (exc.text or "").rstrip("\r\n")
    stripped = text.lstrip()
    if stripped:
        out.append(f"    {stripped}\n")
        if exc.offset and exc.offset > 0:
            col = exc.offset - 1 - (len(text) - len(stripped))
            if 0 <= col <= len(stripped):
                out.append("    " + " " * col + "^\n")
    return out


def _describe(exc: BaseException, filename: str) -> dict[str, Any]:
    """Type, message, line and user-only stack of an exception raised by user code."""
    chain: list[tuple[BaseException, list[tuple[str, int, str]], str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen and len(chain) < 10:
        seen.add(id(current))
        chain.append((current, _user_frames(current.__traceback__, filename), link))
        current.__traceback__ = None
        if current.__cause__ is not None:
            current, link = current.__cause__, "direct"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "context"
        else:
            current = None

    parts: list[str] = []
    for item, frames, via in reversed(chain):
        if frames:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(_format_frames(frames))
        if isinstance(item, SyntaxError) and item.filename == filename and item.lineno:
            parts.extend(_syntax_lines(item, filename))
        parts.append(_exception_only(item) + "\n")
        if via == "direct":
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
            )
        elif via == "context":
            parts.append(
                "\nDuring handling of the above exception, another exception occurred:\n\n"
            )

    frames = chain[0][1]
    line: int | None = frames[-1][1] if frames else None
    column: int | None = None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line, column = exc.lineno, exc.offset

    if isinstance(exc, SyntaxError):
        kind = "SyntaxError"
    elif isinstance(exc, ImportError):
        kind = "ImportError"
    else:
        kind = "RuntimeError"
    message = _exception_only(exc)
    if isinstance(exc, MemoryError):
        message = f"MemoryError: the memory limit of {_memory_limit_mb} MB was hit"
    if line is not None:
        where = f"line {line}" + (f", column {column}" if column else "")
        message += f" ({where})"
    return {
        "type": kind,
        "message": message,
        "line": line,
        "column": column,
        "stack": "".join(parts),
    }


def _non_json(value: Any, path: str, depth: int = 0, active: set[int] | None = None) -> str | None:
    """Describe the first part of ``value`` that JSON cannot hold, with its path."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"float {value!r} at path {path}"
    if depth > 200:
        return f"a structure nested too deeply at path {path}"
    active = active if active is not None else set()
    if isinstance(value, (list, tuple, dict)):
        if id(value) in active:
            return f"a circular reference at path {path}"
        active.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    return f"a dict key of type {type(key).__name__} at path {path}"
                sub = (
                    f"{path}.{key}"
                    if isinstance(key, str) and key.isidentifier()
                    else (f"{path}[{json.dumps(str(key))}]")
                )
                found = _non_json(item, sub, depth + 1, active)
                if found:
                    return found
        else:
            for index, item in enumerate(value):
                found = _non_json(item, f"{path}[{index}]", depth + 1, active)
                if found:
                    return found
        active.discard(id(value))
        return None
    return f"{type(value).__name__} at path {path}"


def _encode_data(data: Any) -> str | dict[str, Any]:
    """The JSON text of ``data``, or an error description when it is not JSON."""
    try:
        return json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, RecursionError, OverflowError):
        try:
            found = _non_json(data, "$")
        except RecursionError:
            found = "a structure nested too deeply"
        return {
            "type": "RuntimeError",
            "message": f"main returned a value that is not JSON: {found or type(data).__name__}",
            "line": None,
            "stack": "",
            "retryable": False,
        }


def _run(request: dict[str, Any]) -> bytes:
    global _current
    filename = request.get("filename") or "<code>"
    logs = _Logs()
    call = _Call(filename, logs, _Capture(logs, "info"), _Capture(logs, "warning"))
    ctx = Context(request.get("ctx") or {}, logs)
    saved = sys.stdout, sys.stderr
    error: dict[str, Any] | None = None
    result: Any = None
    retire = False
    try:
        code = _compile(request["code"], filename)
    except SyntaxError as exc:
        error = _describe(exc, filename)
        error["retryable"] = False
    except (ValueError, MemoryError) as exc:  # null bytes in the source; out of memory
        error = _describe(exc, filename)
        retire = isinstance(exc, MemoryError)
    else:
        namespace: dict[str, Any] = {"__name__": "conv3n_code", "__builtins__": builtins}
        sys.stdout, sys.stderr = call.stdout, call.stderr
        _current = call
        try:
            exec(code, namespace)
            main = namespace.get("main")
            if not callable(main):
                error = {
                    "type": "RuntimeError",
                    "message": "the code defines no top-level function main(input, ctx)",
                    "line": None,
                    "stack": "",
                    "retryable": False,
                }
            else:
                result = main(request.get("input"), ctx)
                if isinstance(result, types.CoroutineType):
                    import asyncio

                    result = asyncio.run(result)
        except BaseException as exc:  # the user's code may raise anything, SystemExit included
            _current = None
            error = _describe(exc, filename)
            retire = isinstance(exc, MemoryError)
        finally:
            _current = None
            sys.stdout, sys.stderr = saved
            namespace.clear()
            _restore_signals()
            try:
                os.chdir(_cwd)
            except OSError:
                pass
    entries = call.finish_logs()
    if error is None:
        encoded = _encode_data(result)
        result = None
        if isinstance(encoded, str):
            head = '{"ok":true,"logs":' + json.dumps(entries) + ',"data":'
            return (head + encoded + "}").encode()
        error = encoded
    reply: dict[str, Any] = {"ok": False, "error": error, "logs": entries}
    if retire:
        reply["retire"] = True
    return json.dumps(reply).encode()


def _restore_signals() -> None:
    # User code may have replaced them; the next call's time limit relies on SIGTERM.
    if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        signal.signal(signal.SIGTERM, _on_sigterm)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    """The host's time limit: report where the user's code was, then exit."""
    call = _current
    if call is not None:
        try:
            frames = []
            while frame is not None:
                if frame.f_code.co_filename == call.filename:
                    frames.append((call.filename, frame.f_lineno, frame.f_code.co_name))
                frame = frame.f_back
            frames.reverse()
            stack = "".join(["Traceback (most recent call last):\n", *_format_frames(frames)])
            _write_message(
                {
                    "ok": False,
                    "terminated": True,
                    "line": frames[-1][1] if frames else None,
                    "stack": stack if frames else "",
                    "logs": call.finish_logs(),
                }
            )
        except BaseException:  # dying anyway; the host reports the timeout without the place
            pass
    os._exit(128 + signum)


def _set_parent_death_signal(parent_pid: int) -> None:
    # If the host dies while user code spins, nobody would close our stdin: let Linux kill us.
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent_pid and os.getppid() != parent_pid:  # the host died before prctl
        os._exit(0)


def _set_memory_limit(limit_bytes: int) -> None:
    if limit_bytes <= 0:
        return
    try:
        import resource
    except ImportError:  # not on this platform
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


_cwd = ""


def main() -> None:
    """Serve calls until stdin closes."""
    global _proto_in, _proto_out, _memory_limit_mb, _cwd
    _cwd = os.getcwd()  # noqa: PTH109 - pathlib stays out of the worker's start-up
    # Keep the protocol on private descriptors; fd 0 reads nothing and fd 1 goes to stderr, so a
    # child process or C library writing to "stdout" cannot corrupt a message.
    _proto_in = os.dup(0)
    _proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the host
    signal.signal(signal.SIGTERM, _on_sigterm)
    faulthandler.enable()  # a crash in C code leaves its trace on stderr for the host
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    _set_parent_death_signal(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    _memory_limit_mb = limit // (1024 * 1024)
    _set_memory_limit(limit)
    _write_message({"ready": True, "pid": os.getpid()})
    while True:
        try:
            request = _read_message()
        except MemoryError:
            _write_message({"ok": False, "error": _memory_error(), "logs": [], "retire": True})
            continue
        if request is None:
            os._exit(0)
        try:
            reply = _run(request)
        except MemoryError:
            reply = json.dumps(
                {"ok": False, "error": _memory_error(), "logs": [], "retire": True}
            ).encode()
        except Exception as exc:  # a malformed request; report it rather than die
            error = {"type": "RuntimeError", "message": f"worker error: {exc!r}", "stack": ""}
            reply = json.dumps({"ok": False, "error": error, "logs": [], "retire": True}).encode()
        _write_raw(reply)


def _memory_error() -> dict[str, Any]:
    return {
        "type": "RuntimeError",
        "message": f"MemoryError: the memory limit of {_memory_limit_mb} MB was hit",
        "line": None,
        "stack": "",
    }


if __name__ == "__main__":
    main()
