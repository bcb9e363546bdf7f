"""Shared resources of one engine process: the pooled HTTP client, code workers, settings.

One :class:`Runtime` serves many executions; ``run()`` makes a temporary one when none is
given. Resources are created on first use and closed by :meth:`Runtime.aclose`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def allowed_env(
    environ: Mapping[str, str] | None = None, patterns: str | None = None
) -> dict[str, str]:
    """Environment variables visible to ``$env``: only those matching ``CONV3N_ENV_ALLOW``.

    ``CONV3N_ENV_ALLOW`` is a comma-separated list of names or globs (``"HOME,MY_APP_*"``);
    unset means none, so a workflow cannot read the host's secrets by default.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("CONV3N_ENV_ALLOW", "") if patterns is None else patterns
    pats = [p.strip() for p in raw.split(",") if p.strip()]
    if not pats:
        return {}
    return {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in pats)}


class Runtime:
    """Process-wide resources the blocks share, created lazily and closed together."""

    def __init__(
        self,
        *,
        files_root: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        store: Any = None,
    ) -> None:
        self.files_root = Path(
            files_root or os.environ.get("CONV3N_FILES_ROOT") or Path.cwd()
        ).resolve()
        self.env = dict(env) if env is not None else allowed_env()
        self.secrets = dict(secrets or {})
        # The persistent store (``conv3n_jupyter.store.Store``) when one is configured: blocks
        # that keep state beyond a run (workflow/global variables, sub-workflows by id) use it.
        self.store = store
        self._http: Any = None
        self._resources: dict[str, Any] = {}

    def http(self) -> Any:
        """The shared ``httpx.AsyncClient`` (HTTP/1.1 keep-alive pool)."""
        if self._http is None:
            from http.cookiejar import CookieJar, DefaultCookiePolicy

            import httpx

            # One pool for every node and execution: a shared cookie jar would leak one
            # workflow's session cookies into another's requests, so cookies are never stored.
            jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
            self._http = httpx.AsyncClient(
                limits=limits, timeout=30.0, follow_redirects=False, cookies=jar
            )
        return self._http

    def resource(self, name: str, factory: Callable[[], Any]) -> Any:
        """A named shared resource, made once by ``factory()``; closed with ``aclose`` if it has one."""
        res = self._resources.get(name)
        if res is None:
            res = self._resources[name] = factory()
        return res

    async def aclose(self) -> None:
        """Close every resource, then the HTTP client (a resource may still use it to finish)."""
        resources, self._resources = self._resources, {}
        for res in resources.values():
            close = getattr(res, "aclose", None)
            if close is not None:
                await close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
