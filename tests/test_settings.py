"""Settings: sources and their precedence, validation errors, masking, ``conv3n config``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.settings import (
    Settings,
    SettingsError,
    is_secret,
    load_settings,
    masked,
    resolve_settings,
)

LAYERED = """
[default]
port = 8001
host = "0.0.0.0"
log_level = "warning"
workers = 3

[env.dev]
port = 8002
log_level = "debug"

[env.prod]
port = 8003
database_url = "postgresql://app:hunter2@db.internal/conv3n"
"""


def toml(tmp_path: Path, text: str, name: str = "conv3n.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(**kwargs: Any) -> list[str]:
    with pytest.raises(SettingsError) as info:
        resolve_settings(**kwargs)
    return info.value.problems


# -- sources and precedence -------------------------------------------------------------------


def test_defaults_without_file_or_variables() -> None:
    """With no file and no variables every setting has its documented default."""
    resolved = resolve_settings(environ={}, config_path=None)
    s = resolved.settings
    assert s.database_url == "sqlite:///./conv3n.db"
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8787, os.cpu_count() or 1)
    assert s.files_root is None and s.env_allow == () and s.http_allow_private is True
    assert s.http_max_body == 50 * 1024 * 1024
    assert set(resolved.sources.values()) == {"default"}
    assert (resolved.environment, resolved.config_file) == ("dev", None)


def test_precedence_chain(tmp_path: Path) -> None:
    """defaults < [default] < [env.NAME] < CONV3N_* variables < overrides, each source named."""
    path = toml(tmp_path, LAYERED)
    environ = {"CONV3N_LOG_LEVEL": "ERROR", "CONV3N_WORKERS": "5"}
    resolved = resolve_settings(environ=environ, config_path=path, overrides={"workers": 7})
    s = resolved.settings
    assert (s.host, s.port, s.log_level, s.workers) == ("0.0.0.0", 8002, "error", 7)
    assert s.log_format == "json"
    assert dict(resolved.sources) == {
        **dict.fromkeys(resolved.sources, "default"),
        "host": f"{path}:[default]",
        "port": f"{path}:[env.dev]",
        "log_level": "CONV3N_LOG_LEVEL",
        "workers": "flag --workers",
    }


def test_environment_is_picked_by_variable_and_argument(tmp_path: Path) -> None:
    """CONV3N_ENV picks the table, an explicit environment beats it, other tables are ignored."""
    path = toml(tmp_path, LAYERED)
    prod = resolve_settings(environ={"CONV3N_ENV": "prod"}, config_path=path)
    assert (prod.environment, prod.settings.port, prod.settings.log_level) == (
        "prod",
        8003,
        "warning",
    )
    staging = resolve_settings(
        environ={"CONV3N_ENV": "prod"}, config_path=path, environment="staging"
    )
    assert (staging.settings.port, staging.settings.database_url) == (8001, "sqlite:///./conv3n.db")


def test_file_from_conv3n_config_or_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is $CONV3N_CONFIG when set, else ./conv3n.toml, else none."""
    monkeypatch.chdir(tmp_path)
    assert resolve_settings(environ={}).config_file is None
    toml(tmp_path, "[default]\nport = 1111\n")
    assert load_settings(environ={}).port == 1111
    other = toml(tmp_path, "[default]\nport = 2222\n", "other.toml")
    assert load_settings(environ={"CONV3N_CONFIG": str(other)}).port == 2222
    missing = str(tmp_path / "missing.toml")
    (problem,) = problems_of(environ={"CONV3N_CONFIG": missing})
    assert problem.startswith(f"{missing}: cannot read the settings file")


def test_existing_variables_keep_their_engine_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONV3N_HTTP_*, CONV3N_ENV_ALLOW and CONV3N_FILES_ROOT read as the engine reads them."""
    from conv3n_jupyter._paths import default_files_root
    from conv3n_jupyter.blocks.std import http_request
    from conv3n_jupyter.engine.runtime import allowed_env

    cases = [
        {"CONV3N_HTTP_ALLOW_PRIVATE": " Off ", "CONV3N_HTTP_MAX_BODY": " 1024 "},
        {"CONV3N_HTTP_ALLOW_PRIVATE": "yes", "CONV3N_HTTP_MAX_BODY": "  "},
        {"CONV3N_ENV_ALLOW": " HOME, MY_APP_* ,,", "CONV3N_FILES_ROOT": ""},
    ]
    for environ in cases:
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        s = load_settings(config_path=None)
        assert s.http_allow_private is http_request._env_allow_private()
        assert s.http_max_body == http_request._max_body()
        assert allowed_env(patterns=",".join(s.env_allow)) == allowed_env()
        assert Path(os.path.realpath(s.files_root or Path.cwd())) == default_files_root()
    assert s.env_allow == ("HOME", "MY_APP_*")


def test_settings_are_frozen_and_file_values_typed(tmp_path: Path) -> None:
    """Settings cannot be changed after loading; TOML lists, booleans and durations are typed."""
    path = toml(
        tmp_path,
        '[default]\nenv_allow = ["HOME"]\nhttp_allow_private = false\nexecution_timeout = "5m"\n'
        'files_root = "/srv/files"\n',
    )
    s = load_settings(environ={}, config_path=path)
    assert (s.env_allow, s.http_allow_private, s.execution_timeout) == (("HOME",), False, 300.0)
    assert s.files_root == Path("/srv/files")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


# -- errors -----------------------------------------------------------------------------------


def test_unknown_keys_tables_and_environments_suggest_names(tmp_path: Path) -> None:
    """Unknown keys, tables and environment tables are errors that suggest the close name."""
    path = toml(tmp_path, "[defualt]\nx = 1\n[default]\nprot = 1\n[env.prd]\nport = 1\n")
    problems = problems_of(environ={}, config_path=path)
    assert problems == [
        f"{path}: unknown table [defualt] (did you mean 'default'?)",
        f"{path}: unknown environment [env.prd] (did you mean 'prod'?); known: dev, staging, prod",
        f"{path}: [default] prot: unknown setting (did you mean 'port'?)",
    ]


def test_unknown_environment_lists_the_known_ones() -> None:
    """An unknown CONV3N_ENV or --env names the source and lists dev, staging, prod."""
    assert problems_of(environ={"CONV3N_ENV": "qa"}, config_path=None) == [
        "CONV3N_ENV: unknown environment 'qa'; known: dev, staging, prod"
    ]
    assert problems_of(environ={}, config_path=None, environment="live") == [
        "--env: unknown environment 'live'; known: dev, staging, prod"
    ]


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("CONV3N_PORT", "80.5", "expected a whole number"),
        ("CONV3N_PORT", "70000", "expected a whole number between 0 and 65535"),
        ("CONV3N_WORKERS", "-1", "expected a whole number"),
        ("CONV3N_WORKER_MEMORY_LIMIT_MB", "10", "expected a whole number at least 64"),
        ("CONV3N_HTTP_ALLOW_PRIVATE", "maybe", "expected true or false"),
        ("CONV3N_HTTP_ALLOW_PRIVATE", "", "expected true or false"),
        ("CONV3N_LOG_FORMAT", "xml", "expected one of json, text"),
        ("CONV3N_EXECUTION_TIMEOUT", "soon", "expected a duration"),
        ("CONV3N_EXECUTION_TIMEOUT", "0s", "expected a positive duration"),
        ("CONV3N_EXECUTION_TIMEOUT", "3600", "give a duration with its unit"),
        ("CONV3N_HOST", " ", "expected a non-empty string"),
    ],
)
def test_bad_variable_names_the_variable_type_and_value(
    var: str, value: str, expected: str
) -> None:
    """A bad variable is reported with its name, the expected type and the value given."""
    (problem,) = problems_of(environ={var: value}, config_path=None)
    assert problem.startswith(f"{var}: {expected}")
    assert problem.endswith(f"got {value!r}")


def test_bad_file_values_name_path_table_and_key(tmp_path: Path) -> None:
    """Every bad TOML value is reported at once, with file, table and key."""
    path = toml(
        tmp_path,
        '[default]\nport = "8080"\nworkers = true\nenv_allow = [1]\n'
        "[env.staging]\ndatabase_url = 5\n",
    )
    problems = problems_of(environ={"CONV3N_ENV": "staging"}, config_path=path)
    assert problems == [
        f"{path}: [default] port: expected a whole number, got '8080'",
        f"{path}: [default] workers: expected a whole number, got True",
        f"{path}: [default] env_allow: expected a list of names or a comma-separated string, got [1]",
        f"{path}: [env.staging] database_url: expected a non-empty string, got 5",
    ]


def test_malformed_toml_and_wrong_layout(tmp_path: Path) -> None:
    """Malformed TOML and non-table sections are errors naming the file."""
    bad = toml(tmp_path, "[default\n", "bad.toml")
    (problem,) = problems_of(environ={}, config_path=bad)
    assert problem.startswith(f"{bad}: malformed TOML: ")
    flat = toml(tmp_path, "default = 1\nenv = {dev = 2}\n", "flat.toml")
    assert problems_of(environ={}, config_path=flat) == [
        f"{flat}: default must be a table, got an integer",
        f"{flat}: env.dev must be a table, got an integer",
    ]


def test_unknown_override_suggests_a_name() -> None:
    """An override (a flag) of an unknown setting is an error with a suggestion."""
    assert problems_of(environ={}, config_path=None, overrides={"prot": 1}) == [
        "--prot: unknown setting (did you mean 'port'?)"
    ]


def test_without_a_toml_reader_the_error_says_what_to_install(tmp_path: Path) -> None:
    """Where neither tomllib (3.11+) nor tomli is importable, reading a file fails clearly."""
    path = toml(tmp_path, "[default]\nport = 1\n")
    code = (
        "import sys\nsys.modules['tomllib'] = None\nsys.modules['tomli'] = None\n"
        "from conv3n_jupyter.settings import SettingsError, load_settings\n"
        "try:\n    load_settings(environ={}, config_path=sys.argv[1])\n"
        "except SettingsError as exc:\n    print(exc.problems[0])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == (
        f"{path}: reading TOML needs Python 3.11+ or the tomli package (pip install tomli)"
    )


# -- masking ----------------------------------------------------------------------------------


def test_masking_of_url_passwords_and_secret_names() -> None:
    """Passwords inside URLs and whole values of secret/token/password keys are masked."""
    assert masked("database_url", "postgresql://u:pa:ss@h/db") == "postgresql://u:***@h/db"
    assert masked("database_url", "sqlite:///./conv3n.db") == "sqlite:///./conv3n.db"
    assert masked("database_url", "postgresql://u@h/db") == "postgresql://u@h/db"
    assert masked("api_token", "abc") == "***"
    assert [is_secret(n) for n in ("signing_secret", "Password", "port")] == [True, True, False]


def test_repr_and_report_hide_the_database_password(tmp_path: Path) -> None:
    """repr(settings) and the config report show the URL with its password masked."""
    path = toml(tmp_path, LAYERED)
    resolved = resolve_settings(environ={"CONV3N_ENV": "prod"}, config_path=path)
    assert resolved.settings.database_url.endswith("hunter2@db.internal/conv3n")
    text = repr(resolved.settings) + json.dumps(resolved.to_dict())
    assert "hunter2" not in text
    assert "postgresql://app:***@db.internal/conv3n" in repr(resolved.settings)
    assert repr(Settings()).startswith("<Settings database_url='sqlite:///./conv3n.db', host=")


# -- conv3n config ----------------------------------------------------------------------------


def conv3n(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONV3N_")} | env
    return subprocess.run(
        [sys.executable, "-m", "conv3n_jupyter", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=60,
        check=False,
    )


def test_config_command_json(tmp_path: Path) -> None:
    """`conv3n config --json --env prod` prints masked values with their sources."""
    toml(tmp_path, LAYERED)
    proc = conv3n(tmp_path, "config", "--json", "--env", "prod", CONV3N_HOST="10.0.0.1")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["environment"], report["config_file"]) == ("prod", "conv3n.toml")
    rows = report["settings"]
    assert rows["database_url"] == {
        "value": "postgresql://app:***@db.internal/conv3n",
        "source": "conv3n.toml:[env.prod]",
        "env_var": "CONV3N_DATABASE_URL",
        "description": rows["database_url"]["description"],
    }
    assert (rows["host"]["value"], rows["host"]["source"]) == ("10.0.0.1", "CONV3N_HOST")
    assert (rows["port"]["value"], rows["log_level"]["source"]) == (8003, "conv3n.toml:[default]")
    assert "hunter2" not in proc.stdout


def test_config_command_plain_text_and_errors(tmp_path: Path) -> None:
    """Without a terminal `conv3n config` prints one line per setting; bad settings exit 2."""
    proc = conv3n(tmp_path, "config", CONV3N_DATABASE_URL="postgresql://u:pw@h/db")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "environment dev · file none"
    assert 'database_url = "postgresql://u:***@h/db"  (CONV3N_DATABASE_URL)' in lines
    assert "port = 8787  (default)" in lines
    bad = conv3n(tmp_path, "config", "--env", "qa", CONV3N_PORT="x")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "CONV3N_PORT: expected a whole number, got 'x'" in bad.stderr
    assert "--env: unknown environment 'qa'; known: dev, staging, prod" in bad.stderr


# -- history retention ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "days"),
    [("30", 30.0), ("7d", 7.0), ("12h", 0.5), ("1.5", 1.5), (" 2d ", 2.0), ("0", None), ("", None)],
)
def test_history_keep_days_reads_days_or_a_duration(raw: str, days: float | None) -> None:
    """A bare number counts days, a unit makes it a duration; 0 or blank means no age limit."""
    s = load_settings(environ={"CONV3N_HISTORY_KEEP_DAYS": raw}, config_path=None)
    assert s.history_keep_days == days
    assert s.history_limits() == ((days * 86400 if days else None), None)


def test_history_settings_default_to_keeping_everything_and_read_the_file(tmp_path: Path) -> None:
    """By default nothing is pruned; TOML numbers and strings both work."""
    assert load_settings(environ={}, config_path=None).history_limits() == (None, None)
    path = toml(tmp_path, "[default]\nhistory_keep_days = 30\nhistory_keep_last = 500\n")
    assert load_settings(environ={}, config_path=path).history_limits() == (2592000.0, 500)
    path = toml(tmp_path, '[default]\nhistory_keep_days = "36h"\nhistory_keep_last = 0\n')
    assert load_settings(environ={}, config_path=path).history_limits() == (129600.0, None)


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("CONV3N_HISTORY_KEEP_DAYS", "-1", "expected a finite number of days, 0 or more"),
        ("CONV3N_HISTORY_KEEP_DAYS", "soon", "expected a number of days or a duration"),
        ("CONV3N_HISTORY_KEEP_DAYS", "nan", "expected a finite number of days"),
        ("CONV3N_HISTORY_KEEP_LAST", "-3", "expected a whole number"),
        ("CONV3N_HISTORY_KEEP_LAST", "ten", "expected a whole number"),
    ],
)
def test_bad_history_settings_are_reported(var: str, value: str, expected: str) -> None:
    (problem,) = problems_of(environ={var: value}, config_path=None)
    assert problem.startswith(f"{var}: {expected}")
    assert problem.endswith(f"got {value!r}")


def test_history_keep_days_refuses_booleans_in_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "[default]\nhistory_keep_days = true\n")
    (problem,) = problems_of(environ={}, config_path=path)
    assert "history_keep_days: expected a number of days or a duration" in problem
