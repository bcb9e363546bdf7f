"""The boundary with the CEL engine: loading its native module and its function library.

Only the native extension ``cel.cel`` and the pure-Python ``cel.stdlib`` are loaded (lazily,
each on first use): the ``cel`` package's ``__init__`` imports a command-line interface that
costs far more than the engine itself.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

_LOAD_LOCK = threading.RLock()
_native: ModuleType | None = None
_stdlib: ModuleType | None = None
_programs: dict[str, Any] = {}
_CACHE_MAX = 20_000
_MISSING = (
    "expressions need the CEL engine from the 'common-expression-language' package, "
    "which was not found: pip install 'common-expression-language>=0.10,<0.11'"
)


def native() -> ModuleType:
    """The ``cel.cel`` extension module, loaded on first use (by one thread only)."""
    global _native
    if _native is None:
        # The module is loaded by hand, outside the import system's locks, and its
        # initialisation panics when it runs twice (it installs a logger): threads that ask
        # for it at the same time must wait for the first.
        with _LOAD_LOCK:
            if _native is None:
                _native = _load()
    return _native


def _package_folders() -> list[str]:
    spec = importlib.util.find_spec("cel")
    return list((spec.submodule_search_locations or []) if spec else [])


def _load() -> ModuleType:
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:
        return loaded
    for folder in _package_folders():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folder) / f"cel{suffix}"
            if not path.is_file():
                continue
            loader = importlib.machinery.ExtensionFileLoader("cel.cel", str(path))
            ext_spec = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
            assert ext_spec is not None
            module = importlib.util.module_from_spec(ext_spec)
            loader.exec_module(module)
            # Registered so that a later ``import cel`` reuses it: the extension cannot be
            # initialised twice in one process.
            sys.modules["cel.cel"] = module
            return module
    raise ImportError(_MISSING)


def stdlib() -> ModuleType:
    """The package's ``cel.stdlib`` (pure-Python extension functions), loaded on first use.

    Its only import of the package is ``from .cel import OptionalValue``, which resolves to
    the already registered native module, so the package ``__init__`` never runs.
    """
    global _stdlib
    if _stdlib is None:
        native()
        with _LOAD_LOCK:
            if _stdlib is None:
                _stdlib = _load_stdlib()
    return _stdlib


def _load_stdlib() -> ModuleType:
    native()
    loaded = sys.modules.get("cel.stdlib")
    if loaded is not None:
        return loaded
    for folder in _package_folders():
        path = Path(folder) / "stdlib.py"
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location("cel.stdlib", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["cel.stdlib"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["cel.stdlib"]
            raise
        return module
    raise ImportError(_MISSING)


def quiet_failures_of(names: frozenset[str]) -> None:
    """Stop the engine's logger (``cel``) from printing failures of the functions ``names``.

    Such a failure is raised as an :class:`~conv3n_jupyter.errors.ExpressionError` anyway; the
    engine would also log a warning, printed once per failing evaluation.
    """
    import logging

    prefix = "Python function '"

    def keep(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(prefix) or message[len(prefix) :].split("'")[0] not in names

    logger = logging.getLogger("cel")
    if not any(getattr(f, "__qualname__", "") == keep.__qualname__ for f in logger.filters):
        logger.addFilter(keep)


def program(text: str) -> Any:
    """Compile CEL ``text`` once; raises the engine's ``ValueError`` on a syntax error."""
    prog = _programs.get(text)
    if prog is None:
        prog = native().compile(text)
        if len(_programs) >= _CACHE_MAX:
            _programs.clear()
        _programs[text] = prog
    return prog
