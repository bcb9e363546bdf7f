"""Tests of the files-root confinement in ``conv3n_jupyter._paths``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conv3n_jupyter._paths import (
    ROOT_ENV,
    default_files_root,
    path_problem,
    relative_to_root,
    resolve_inside,
)
from conv3n_jupyter.errors import FileAccessError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    (r / "sub" / "f.txt").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s")
    return r


@pytest.mark.parametrize(
    "user_path",
    [
        "../x",
        "..",
        "a/../../x",
        "sub/../../outside/secret.txt",
        "/etc/passwd",
        "//etc/passwd",
        "~/x",
        "a\x00b",
        "C:\\Windows\\system32",
        "C:/Windows",
        "c:relative",
        "\\\\server\\share\\x",
        "\\x",
        "..\\..\\x",
        "sub\\..\\..\\x",
    ],
)
def test_refuses_escapes_on_their_face(root: Path, user_path: str) -> None:
    """Absolute (POSIX and Windows), ``..``, home and NUL paths are refused with a reason."""
    assert path_problem(user_path) is not None
    with pytest.raises(FileAccessError) as info:
        resolve_inside(root, user_path)
    assert repr(user_path) in str(info.value)
    assert info.value.retryable is False


def test_refuses_non_strings(root: Path) -> None:
    """A non-string path is refused, not crashed on."""
    with pytest.raises(FileAccessError, match="must be a string"):
        resolve_inside(root, 3)  # type: ignore[arg-type]


def test_accepts_paths_inside(root: Path) -> None:
    """Plain relative paths, ``.``, empty and inner ``..`` stay inside and are normalised."""
    real = Path(os.path.realpath(root))
    assert resolve_inside(root, "sub/f.txt") == real / "sub" / "f.txt"
    assert resolve_inside(root, "new/deep/file.json") == real / "new" / "deep" / "file.json"
    assert resolve_inside(root, "sub/../sub/./f.txt") == real / "sub" / "f.txt"
    assert resolve_inside(root, "") == real
    assert resolve_inside(root, ".") == real
    assert relative_to_root(root, resolve_inside(root, ".")) == "."
    assert relative_to_root(root, resolve_inside(root, "sub/f.txt")) == "sub/f.txt"


def test_refuses_symlinked_file_out_of_root(root: Path, tmp_path: Path) -> None:
    """A symlink inside the root whose target is outside is refused, naming the symlink reason."""
    (root / "link.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    with pytest.raises(FileAccessError, match="symlink"):
        resolve_inside(root, "link.txt")


def test_refuses_symlinked_dir_out_of_root(root: Path, tmp_path: Path) -> None:
    """A path through a symlinked folder pointing outside is refused, even for a new file in it."""
    (root / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    for p in ("out", "out/secret.txt", "out/new.txt", "out/new/deeper.txt"):
        with pytest.raises(FileAccessError, match="symlink"):
            resolve_inside(root, p)


def test_refuses_dangling_symlink_out_of_root(root: Path, tmp_path: Path) -> None:
    """A dangling symlink aimed outside the root is refused (a write would follow it)."""
    (root / "dangling").symlink_to(tmp_path / "outside" / "missing.txt")
    with pytest.raises(FileAccessError, match="symlink"):
        resolve_inside(root, "dangling")


def test_link_dotdot_is_normalised_before_use(root: Path, tmp_path: Path) -> None:
    """``link/../x`` is normalised lexically to ``x`` under the root, so the OS never follows it."""
    (root / "deep").symlink_to(tmp_path / "outside" / "inner", target_is_directory=True)
    (tmp_path / "outside" / "inner").mkdir()
    resolved = resolve_inside(root, "deep/../outside/secret.txt")
    assert resolved == Path(os.path.realpath(root)) / "outside" / "secret.txt"
    assert not resolved.exists()


def test_allows_symlink_inside_root(root: Path) -> None:
    """A symlink whose target stays inside the root is allowed and kept as the link."""
    (root / "alias").symlink_to(root / "sub", target_is_directory=True)
    resolved = resolve_inside(root, "alias/f.txt")
    assert resolved.read_text() == "x"
    assert resolved.parent.name == "alias"


def test_root_itself_may_be_a_symlink(tmp_path: Path) -> None:
    """A root reached through a symlink works: containment is checked on real paths."""
    real = tmp_path / "real-root"
    real.mkdir()
    link = tmp_path / "root-link"
    link.symlink_to(real, target_is_directory=True)
    assert resolve_inside(link, "a.txt") == Path(os.path.realpath(real)) / "a.txt"


def test_default_root_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``CONV3N_FILES_ROOT`` sets the root; without it the working directory is used."""
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    assert default_files_root() == Path(os.path.realpath(tmp_path))
    monkeypatch.delenv(ROOT_ENV)
    monkeypatch.chdir(tmp_path)
    assert default_files_root() == Path(os.path.realpath(tmp_path))
