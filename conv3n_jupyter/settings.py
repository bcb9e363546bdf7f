"""Settings of the conv3n service: defaults < ``conv3n.toml`` < ``CONV3N_*`` variables < flags.

The file is the one at ``$CONV3N_CONFIG``, else ``./conv3n.toml`` (optional). Its ``[default]``
table applies everywhere; ``[env.dev]``, ``[env.staging]`` and ``[env.prod]`` apply when
``CONV3N_ENV`` (default ``dev``) names them. Each setting ``name`` is read from the variable
``CONV3N_NAME``. Every bad value is reported with where it came from; secrets are masked.

    >>> settings = load_settings(environ={"CONV3N_PORT": "9000"}, config_path=None)
    >>> settings.port, settings.host
    (9000, '127.0.0.1')
    >>> resolve_settings(environ={}).sources["port"]
    'default'
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import Conv3nError

ENVIRONMENTS = ("dev", "staging", "prod")
DEFAULT_ENVIRONMENT = "dev"
CONFIG_ENV, ENV_NAME_ENV, PREFIX = "CONV3N_CONFIG", "CONV3N_ENV", "CONV3N_"
CONFIG_FILE = "conv3n.toml"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "text")
# Same spellings as the engine's own readers of CONV3N_HTTP_ALLOW_PRIVATE.
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_SECRET_WORDS = ("secret", "token", "password")
_URL_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@]*):([^@/?#]*)@")
MASK = "***"


def _meta(description: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "kind": kind, **extra}


@dataclass(frozen=True, repr=False)
class Settings:
    """The effective settings of the service; build them with :func:`load_settings`."""

    database_url: str = field(
        default="sqlite:///./conv3n.db",
        metadata=_meta("Store URL: sqlite:///FILE or postgresql://USER:PASS@HOST/DB", "str"),
    )
    host: str = field(
        default="127.0.0.1", metadata=_meta("Address `conv3n serve` listens on", "str")
    )
    port: int = field(
        default=8787,
        metadata=_meta(
            "TCP port `conv3n serve` listens on (0: any free port)", "int", lo=0, hi=65535
        ),
    )
    workers: int = field(
        default=os.cpu_count() or 1,
        metadata=_meta("Worker processes running executions (0: in-process)", "int", lo=0),
    )
    files_root: Path | None = field(
        default=None,
        metadata=_meta(
            "Root folder of std/file and uploads (unset: the working directory)",
            "path",
            blank_unset=True,
        ),
    )
    env_allow: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            "Names or globs of environment variables visible to $env (unset: none)",
            "list",
            blank_unset=True,
        ),
    )
    http_allow_private: bool = field(
        default=True,
        metadata=_meta(
            "Whether std/http_request may reach private, loopback and link-local addresses", "bool"
        ),
    )
    http_max_body: int = field(
        default=50 * 1024 * 1024,
        metadata=_meta(
            "Largest response body std/http_request reads, in bytes", "int", lo=0, blank_unset=True
        ),
    )
    api_max_body: int = field(
        default=10 * 1024 * 1024,
        metadata=_meta(
            "Largest request body `conv3n serve` accepts, in bytes (larger: 413)", "int", lo=1024
        ),
    )
    max_output_bytes: int = field(
        default=1024 * 1024,
        metadata=_meta(
            "Node output size kept whole in the store; larger ones are truncated", "int", lo=0
        ),
    )
    log_level: str = field(
        default="info", metadata=_meta("Lowest level logged", "choice", choices=LOG_LEVELS)
    )
    log_format: str = field(
        default="json",
        metadata=_meta("Log lines as JSON objects or as text", "choice", choices=LOG_FORMATS),
    )
    execution_timeout: float = field(
        default=3600.0,
        metadata=_meta(
            "Time an execution may run before it is stopped ('30s', '5m', '1h'; a unit is required)",
            "duration",
        ),
    )
    worker_memory_limit_mb: int = field(
        default=2048,
        metadata=_meta(
            "Memory a worker process may use before it is replaced, in MiB", "int", lo=64
        ),
    )
    history_keep_days: float | None = field(
        default=None,
        metadata=_meta(
            "Delete finished executions older than this many days ('30', '7d', '12h'; "
            "unset or 0: no age limit); `conv3n serve` prunes at start and hourly",
            "age",
            blank_unset=True,
        ),
    )
    history_keep_last: int = field(
        default=0,
        metadata=_meta(
            "Keep only this many newest executions (0: no count limit); pruned as above",
            "int",
            lo=0,
            blank_unset=True,
        ),
    )

    def history_limits(self) -> tuple[float | None, int | None]:
        """``(older_than seconds, keep_last)`` for pruning; ``(None, None)``: keep everything.

        >>> Settings(history_keep_days=30.0, history_keep_last=0).history_limits()
        (2592000.0, None)
        """
        days = self.history_keep_days
        return (days * 86400.0 if days else None), (self.history_keep_last or None)

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{f.name}={masked(f.name, getattr(self, f.name))!r}" for f in fields(self)
        )
        return f"<Settings {inner}>"


@dataclass(frozen=True)
class ResolvedSettings:
    """Settings with where each value came from (``default``, ``FILE:[table]``, a variable, a flag)."""

    settings: Settings
    sources: Mapping[str, str]
    environment: str
    config_file: Path | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and masked: ``{"environment", "config_file", "settings": {name: {...}}}``."""
        rows = {}
        for f in fields(self.settings):
            value = masked(f.name, getattr(self.settings, f.name))
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            rows[f.name] = {
                "value": value,
                "source": self.sources[f.name],
                "env_var": env_var(f.name),
                "description": f.metadata["description"],
            }
        return {
            "environment": self.environment,
            "config_file": str(self.config_file) if self.config_file else None,
            "settings": rows,
        }


class SettingsError(Conv3nError, ValueError):
    """One or more settings are invalid; ``problems`` holds one line per bad value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the settings"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


def is_secret(name: str) -> bool:
    """Whether a setting's value is hidden whole (its name holds secret, token or password)."""
    return any(word in name.lower() for word in _SECRET_WORDS)


def masked(name: str, value: Any) -> Any:
    """``value`` as safe to show: secrets become ``***``, URL passwords ``user:***@host``."""
    if value is None:
        return None
    if is_secret(name):
        return MASK
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", value)
    return value


def env_var(name: str) -> str:
    """The environment variable of a setting: ``port`` → ``CONV3N_PORT``."""
    return PREFIX + name.upper()


def load_settings(**kwargs: Any) -> Settings:
    """The effective :class:`Settings`; same arguments as :func:`resolve_settings`."""
    return resolve_settings(**kwargs).settings


def resolve_settings(
    *,
    environ: Mapping[str, str] | None = None,
    config_path: str | Path | bool | None = True,
    environment: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ResolvedSettings:
    """Read the settings from every source, highest precedence last, and validate them.

    ``config_path=True`` finds the file (``$CONV3N_CONFIG``, else ``./conv3n.toml`` when it
    exists); ``None``/``False`` reads no file. ``environment`` beats ``$CONV3N_ENV``.
    ``overrides`` are flag values (``None`` values are ignored). Raises :class:`SettingsError`
    listing every bad value.
    """
    environ = os.environ if environ is None else environ
    env_name = environment or environ.get(ENV_NAME_ENV, "").strip() or DEFAULT_ENVIRONMENT
    problems: list[str] = []
    if env_name not in ENVIRONMENTS:
        source = "--env" if environment else ENV_NAME_ENV
        problems.append(
            f"{source}: unknown environment {env_name!r}; known: {', '.join(ENVIRONMENTS)}"
        )
    specs = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    sources = dict.fromkeys(specs, "default")

    path = (
        _find_config(environ)
        if config_path is True
        else (Path(config_path) if config_path else None)
    )
    if path is not None:
        for table, key, raw in _file_entries(path, env_name, problems):
            where = f"{path}: [{table}] {key}"
            if key not in specs:
                problems.append(f"{where}: unknown setting{_did_you_mean(key, specs)}")
                continue
            _set(specs[key], raw, f"{path}:[{table}]", where, values, sources, problems, text=False)
    for name, spec in specs.items():
        var = env_var(name)
        # Blank means unset for the variables the engine reads that way (files root, allow list).
        if var in environ and not (spec.metadata.get("blank_unset") and not environ[var].strip()):
            _set(spec, environ[var], var, var, values, sources, problems, text=True)
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name not in specs:
            problems.append(f"{flag}: unknown setting{_did_you_mean(name, specs)}")
            continue
        _set(
            specs[name],
            raw,
            f"flag {flag}",
            flag,
            values,
            sources,
            problems,
            text=isinstance(raw, str),
        )
    if problems:
        raise SettingsError(problems)
    return ResolvedSettings(Settings(**values), sources, env_name, path)


# -- private helpers -----------------------------------------------------------------------------


def _find_config(environ: Mapping[str, str]) -> Path | None:
    explicit = environ.get(CONFIG_ENV, "").strip()
    if explicit:
        return Path(explicit)  # a named file that is missing is reported, not skipped
    default = Path(CONFIG_FILE)
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib as toml
    except ModuleNotFoundError:
        try:
            import tomli as toml  # type: ignore[no-redef,import-not-found,unused-ignore]
        except ModuleNotFoundError:
            raise SettingsError(
                [
                    f"{path}: reading TOML needs Python 3.11+ or the tomli package (pip install tomli)"
                ]
            ) from None
    try:
        with path.open("rb") as fh:
            return dict(toml.load(fh))
    except OSError as exc:
        raise SettingsError([f"{path}: cannot read the settings file: {exc.strerror}"]) from None
    except toml.TOMLDecodeError as exc:
        raise SettingsError([f"{path}: malformed TOML: {exc}"]) from None


def _file_entries(path: Path, env_name: str, problems: list[str]) -> list[tuple[str, str, Any]]:
    """``(table, key, value)`` of ``[default]`` then ``[env.<env_name>]``; checks the layout."""
    doc = _read_toml(path)
    out: list[tuple[str, str, Any]] = []
    for top, body in doc.items():
        if top not in ("default", "env"):
            problems.append(
                f"{path}: unknown table [{top}]{_did_you_mean(top, ('default', 'env'))}"
            )
        elif not isinstance(body, dict):
            problems.append(f"{path}: {top} must be a table, got {_type_name(body)}")
    default = doc.get("default")
    if isinstance(default, dict):
        out.extend(("default", k, v) for k, v in default.items())
    envs = doc.get("env")
    if isinstance(envs, dict):
        for name, body in envs.items():
            if name not in ENVIRONMENTS:
                problems.append(
                    f"{path}: unknown environment [env.{name}]{_did_you_mean(name, ENVIRONMENTS)}"
                    f"; known: {', '.join(ENVIRONMENTS)}"
                )
            elif not isinstance(body, dict):
                problems.append(f"{path}: env.{name} must be a table, got {_type_name(body)}")
            elif name == env_name:
                out.extend((f"env.{name}", k, v) for k, v in body.items())
    return out


def _did_you_mean(word: str, known: Any) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _set(
    spec: Any,
    raw: Any,
    source: str,
    where: str,
    values: dict[str, Any],
    sources: dict[str, str],
    problems: list[str],
    *,
    text: bool,
) -> None:
    try:
        values[spec.name] = _convert(spec, raw, text)
    except ValueError as exc:
        shown = masked(spec.name, raw)
        problems.append(f"{where}: {exc}, got {shown!r}")
        return
    sources[spec.name] = source


def _convert(spec: Any, raw: Any, text: bool) -> Any:
    """One value of a setting; ``text`` values come from variables and are parsed."""
    kind, meta = spec.metadata["kind"], spec.metadata
    if kind == "str":
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("expected a non-empty string")
        return raw.strip()
    if kind == "int":
        if text and isinstance(raw, str) and re.fullmatch(r"[0-9]+", raw.strip()):
            raw = int(raw.strip())
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError("expected a whole number")
        lo, hi = meta.get("lo"), meta.get("hi")
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):
            bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise ValueError(f"expected a whole number {bounds}")
        return raw
    if kind == "bool":
        if text and isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false ({'/'.join(_TRUE + _FALSE)} in a variable)")
        return raw
    if kind == "choice":
        value = raw.strip().lower() if isinstance(raw, str) else raw
        if value not in meta["choices"]:
            raise ValueError(f"expected one of {', '.join(meta['choices'])}")
        return value
    if kind == "path":
        if not isinstance(raw, (str, Path)):
            raise ValueError("expected a folder path")
        # Like the engine: an empty value means the working directory.
        return Path(raw) if str(raw) else None
    if kind == "list":
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ValueError("expected a list of names or a comma-separated string")
        return tuple(i.strip() for i in items if i.strip())
    if kind == "age":
        return _age_days(raw)
    from ._durations import parse_duration  # kind == "duration"

    # A bare number means milliseconds in workflows but would read as seconds here: a unit is
    # required so that `3600` cannot silently become 3.6 s.
    if isinstance(raw, (int, float)) or (isinstance(raw, str) and raw.strip().isdigit()):
        raise ValueError(f"give a duration with its unit ('{raw}s', '{raw}ms'), not a bare number")
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise ValueError(f"expected a duration ('30s', '5m', '1h'): {exc}") from None
    if seconds <= 0:
        raise ValueError("expected a positive duration")
    return seconds


def _age_days(raw: Any) -> float | None:
    """An age in days: a bare number counts days (``30``), else a duration (``'7d'``, ``'12h'``).

    0 means no limit (``None``).
    """
    from ._durations import parse_duration

    if isinstance(raw, bool):
        raise ValueError("expected a number of days or a duration ('30', '7d', '12h')")
    if isinstance(raw, str) and raw.strip():
        try:
            raw = float(raw.strip())
        except ValueError:
            try:
                days = parse_duration(raw) / 86400.0
            except ValueError:
                raise ValueError(
                    "expected a number of days or a duration ('30', '7d', '12h')"
                ) from None
            return days or None
    if not isinstance(raw, (int, float)):
        raise ValueError("expected a number of days or a duration ('30', '7d', '12h')")
    if raw != raw or raw in (float("inf"), float("-inf")) or raw < 0:
        raise ValueError("expected a finite number of days, 0 or more")
    return float(raw) or None
