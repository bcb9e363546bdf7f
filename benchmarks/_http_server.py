"""A tiny JSON server for ``bench_http.py``: ``python _http_server.py PORT``.

Starlette on uvicorn on 127.0.0.1, in its own process so that the client under test and the
server do not share a GIL. ``GET /json`` answers a small fixed document.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DOC = {"id": 1, "name": "bench", "tags": ["a", "b"], "price": 9.5}


async def json_doc(request: Request) -> JSONResponse:
    return JSONResponse(DOC)


app = Starlette(routes=[Route("/json", json_doc)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
