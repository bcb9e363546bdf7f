"""Browser fixtures: a real JupyterLab server, Voilà servers, headless Debian chromium.

* ``lab_server`` (session): a :class:`LabServer` — ``url`` (ends with ``/``), ``token``,
  ``root`` (the server's root dir: write notebooks and workflow files there), ``log_tail()``.
* ``voila_server`` (test): a factory ``voila_server(notebook_path) -> VoilaServer`` (``url``,
  ``log_tail()``) serving one notebook; every server it started is stopped after the test.
* ``browser`` (session), ``page`` (test, 1280x900 viewport) and ``page_log`` (the page's
  console messages, page errors and failed requests; ``page_log.assert_clean()``).

Chromium is Debian's ``/usr/bin/chromium`` (never a downloaded browser); without it the tests
are skipped, or fail when ``CI`` is set. Servers get a fresh HOME, Jupyter config/data/runtime
dirs and Lab settings/workspaces, while the venv's ``share/jupyter`` (the widget
labextensions) stays on the data path. When a test fails, the report carries the servers' log
tails and the page's console, and a screenshot lands in ``out/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.browser._lab import screenshot

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
START_TIMEOUT = 90.0

# Known harmless page noise. Matched against "<type>: <text> @ <url>" of console messages and
# "<url> <failure>" of failed requests.
ALLOWED = (
    # ipycytoscape 1.3.3 declares @jupyter-widgets/base up to 4; Lab 4 ships 6 and it works.
    re.compile(r"Unsatisfied version .* shared singleton module @jupyter-widgets/base"),
    # Voilà's page links a fontawesome stylesheet on a CDN; the network is closed.
    re.compile(r"Failed to load resource: net::ERR_\w+ @ https?://[^ ]*fontawesome", re.I),
    re.compile(r"^https?://[^ ]*fontawesome[^ ]* net::ERR_", re.I),
)


_PAGE_LOG = pytest.StashKey["PageLog"]()
_VOILA_SERVERS = pytest.StashKey[list["VoilaServer"]]()
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _isolated_env(home: Path) -> dict[str, str]:
    """The environment with every per-user Jupyter location moved under ``home``."""
    env = dict(os.environ)
    for key in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_PREFER_ENV_PATH"):
        env.pop(key, None)
    dirs = {
        "HOME": home,
        "JUPYTER_CONFIG_DIR": home / ".jupyter",
        # The user data dir is fresh; the venv's share/jupyter stays on the data path
        # (jupyter_core always adds sys.prefix/share/jupyter), so its labextensions load.
        "JUPYTER_DATA_DIR": home / ".local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "IPYTHONDIR": home / ".ipython",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
    }
    for key, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[key] = str(path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class _Server:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    name: str

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's stdout and stderr."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        # SIGTERM lets the server shut its kernels down (they run in sessions of their own).
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@dataclass
class LabServer(_Server):
    """A running JupyterLab: ``url`` (ends with ``/``), ``token``, ``root`` (its root dir)."""

    token: str = ""
    root: Path = field(default_factory=Path)


@dataclass
class VoilaServer(_Server):
    """A running Voilà serving one notebook at ``url``."""


def _start(
    cmd: list[str], *, cwd: Path, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        # A process group of its own, so stopping it never signals pytest.
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_http(
    server: _Server, path: str, headers: dict[str, str], timeout: float, *, any_status: bool = False
) -> bytes:
    """GET ``path`` until it answers 200 (any HTTP answer with ``any_status``); its body."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(server.url + path, headers=headers)
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            exc.close()
            if any_status:
                return b""
            error: Exception = exc
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            error = exc
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"{server.name} did not answer {path} within {timeout:.0f} s ({error}):\n"
                f"{server.log_tail()}"
            )
        time.sleep(0.2)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab server on a free 127.0.0.1 port, isolated from the user's Jupyter setup."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    env = _isolated_env(base / "home")
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    # No "get news?" toast over the page (the network is closed anyway).
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
    )
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    server = LabServer(
        url=f"http://127.0.0.1:{port}/",
        log_path=base / "lab.log",
        process=_start(cmd, cwd=root, env=env, log_path=base / "lab.log"),
        name="JupyterLab",
        token=token,
        root=root,
    )
    try:
        auth = {"Authorization": f"token {token}"}
        _wait_http(server, "api/status", auth, START_TIMEOUT)
        page = _wait_http(server, "lab", auth, START_TIMEOUT).decode("utf-8", "replace")
        for extension in ("@jupyter-widgets/jupyterlab-manager", "jupyter-cytoscape"):
            if f'"name": "{extension}"' not in page and f'"name":"{extension}"' not in page:
                raise RuntimeError(f"JupyterLab does not load the {extension} labextension")
        yield server
    finally:
        server.stop()


@pytest.fixture
def voila_server(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[Path], VoilaServer]]:
    """A factory starting ``voila <notebook>`` on a free port; servers stop after the test."""
    started: list[VoilaServer] = []
    request.node.stash[_VOILA_SERVERS] = started

    def start(notebook: Path) -> VoilaServer:
        base = tmp_path / f"voila{len(started)}"
        base.mkdir()
        port = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "voila",
            str(notebook),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--Voila.port={port}",
            "--Voila.port_retries=0",
        ]
        server = VoilaServer(
            url=f"http://127.0.0.1:{port}/",
            log_path=base / "voila.log",
            process=_start(
                cmd,
                cwd=notebook.parent,
                env=_isolated_env(base / "home"),
                log_path=base / "voila.log",
            ),
            name="Voila",
        )
        started.append(server)
        # Any answer will do, and not from "/": that would execute the notebook.
        _wait_http(server, "voila/static/", {}, START_TIMEOUT, any_status=True)
        return server

    yield start
    for server in started:
        server.stop()


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        reason = f"browser tests need Debian's chromium at {CHROMIUM}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, under CI, fail) a ``browser`` test before its servers start."""
    if item.get_closest_marker("browser"):
        _require_chromium()


# Package scope, not session: Playwright's sync API keeps an event loop marked as running in
# this thread while it is started, which would break every asyncio test collected after these.
@pytest.fixture(scope="package")
def _playwright() -> Iterator[Playwright]:
    _require_chromium()
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(_playwright: Playwright) -> Iterator[Browser]:
    """Headless Debian chromium, shared by the browser tests."""
    browser = _playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class PageLog:
    """What a page reported: console messages, uncaught errors, failed requests."""

    console: list[tuple[str, str, str]] = field(default_factory=list)  # (type, text, url)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[tuple[str, str]] = field(default_factory=list)  # (url, failure)

    def unexpected(self, allowed: tuple[re.Pattern[str], ...] = ALLOWED) -> list[str]:
        """Console errors, page errors and failed requests not matched by ``allowed``."""
        lines = [f"{kind}: {text} @ {url}" for kind, text, url in self.console if kind == "error"]
        lines += [f"pageerror: {error}" for error in self.page_errors]
        lines += [f"{url} {failure}" for url, failure in self.failed_requests]
        return [line for line in lines if not any(p.search(line) for p in allowed)]

    def assert_clean(self, allowed: tuple[re.Pattern[str], ...] = ALLOWED) -> None:
        """Fail listing every unexpected console error, page error or failed request."""
        problems = self.unexpected(allowed)
        assert not problems, "unexpected errors in the page:\n" + "\n".join(problems)

    def text(self) -> str:
        lines = [f"[{kind}] {text} @ {url}" for kind, text, url in self.console]
        lines += [f"[pageerror] {error}" for error in self.page_errors]
        lines += [f"[requestfailed] {url} {failure}" for url, failure in self.failed_requests]
        return "\n".join(lines)


@pytest.fixture
def _page_and_log(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[tuple[Page, PageLog]]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    log = PageLog()

    def on_console(message: ConsoleMessage) -> None:
        log.console.append((message.type, message.text, message.location.get("url", "")))

    def on_failed(req: Request) -> None:
        log.failed_requests.append((req.url, req.failure or ""))

    page.on("console", on_console)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on("requestfailed", on_failed)
    request.node.stash[_PAGE_LOG] = log
    try:
        yield page, log
    finally:
        report: pytest.TestReport | None = request.node.stash.get(_CALL_REPORT, None)
        if report is not None and report.failed:
            try:
                screenshot(page, f"{request.node.name}-failed")
            except (PlaywrightError, OSError) as exc:  # must not hide the test's own failure
                log.page_errors.append(f"(no failure screenshot: {exc})")
        context.close()


@pytest.fixture
def page(_page_and_log: tuple[Page, PageLog]) -> Page:
    """A fresh page (own browser context) whose console and errors go to ``page_log``."""
    return _page_and_log[0]


@pytest.fixture
def page_log(_page_and_log: tuple[Page, PageLog]) -> PageLog:
    """The console messages, page errors and failed requests of ``page``."""
    return _page_and_log[1]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the call's report for the page fixture; attach server logs and console on failure."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        lab = funcargs.get("lab_server")
        if isinstance(lab, LabServer):
            report.sections.append(("JupyterLab log (tail)", lab.log_tail()))
        for voila in item.stash.get(_VOILA_SERVERS, []):
            report.sections.append((f"Voila log (tail) {voila.url}", voila.log_tail()))
        log = item.stash.get(_PAGE_LOG, None)
        if log is not None:
            report.sections.append(("page console", log.text()[-8000:]))
    return report
