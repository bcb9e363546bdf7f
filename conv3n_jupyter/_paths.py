"""Confinement of user-supplied paths to one root folder.

Every face that touches files on a user's behalf (``std/file``, file triggers, uploads) resolves
the user's path with :func:`resolve_inside`, which refuses anything that would land outside the
root: absolute paths (POSIX or Windows), ``..`` escapes, NUL bytes, and symlinks (on any
component, including the parent of a file about to be written) whose target is outside.

    >>> root = default_files_root()
    >>> resolve_inside(root, "reports/today.json")  # doctest: +SKIP
    PosixPath('/srv/files/reports/today.json')
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import FileAccessError

ROOT_ENV = "CONV3N_FILES_ROOT"

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def default_files_root() -> Path:
    """The configured files root: ``$CONV3N_FILES_ROOT``, else the working directory (resolved)."""
    configured = os.environ.get(ROOT_ENV)
    return Path(os.path.realpath(configured or Path.cwd()))


def path_problem(user_path: object) -> str | None:
    """Why ``user_path`` is refused on its face (without touching the disk), or ``None``.

    Catches absolute paths, Windows drives and UNC paths, NUL bytes and ``..`` escapes; symlinks
    need the disk and are checked by :func:`resolve_inside`.
    """
    if not isinstance(user_path, str):
        return f"a path must be a string, not {type(user_path).__name__}"
    if "\x00" in user_path:
        return "contains a NUL byte"
    if PurePosixPath(user_path).is_absolute() or user_path == "~" or user_path.startswith("~/"):
        return "absolute paths are not allowed; give a path relative to the files root"
    windows = PureWindowsPath(user_path)
    if windows.drive or windows.root or _WINDOWS_DRIVE.match(user_path):
        return "absolute (Windows) paths are not allowed; give a path relative to the files root"
    # Backslashes count as separators here so that "..\\x" cannot sneak past on any platform.
    normal = os.path.normpath(user_path.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        return "'..' leads outside the files root"
    return None


def resolve_inside(root: Path, user_path: str) -> Path:
    """The absolute path of ``user_path`` under ``root``; raises if it would leave the root.

    The result is normalised lexically (``a/../b`` → ``root/b``) and is exactly the path whose
    real location was checked, so callers operate on what was verified. A final symlink that
    points inside the root is kept as the link (deleting it removes the link, not its target).
    An empty path or ``"."`` is the root itself.

    Raises :class:`~conv3n_jupyter.errors.FileAccessError` (not retryable) naming the path and
    the reason.
    """
    reason = path_problem(user_path)
    if reason is not None:
        raise _refused(user_path, reason)
    real_root = Path(os.path.realpath(root))
    normal = os.path.normpath(user_path or ".")
    candidate = real_root if normal == "." else real_root / normal
    real = Path(os.path.realpath(candidate))
    if not real.is_relative_to(real_root):
        raise _refused(user_path, f"a symlink leads outside the files root (to {str(real)!r})")
    return candidate


def relative_to_root(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` in POSIX style; the root itself is ``"."``."""
    rel = path.relative_to(os.path.realpath(root)).as_posix()
    return rel or "."


def _refused(user_path: object, reason: str) -> FileAccessError:
    return FileAccessError(
        f"path {user_path!r} refused: {reason}",
        retryable=False,
        details={
            "path": user_path if isinstance(user_path, str) else repr(user_path),
            "reason": reason,
        },
    )
