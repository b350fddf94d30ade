"""The guard's last resort: an unexpected exception is a JSON 500 with an error id that is
also in the server log, and the client's connection stays open for its next request."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestrator.auth import Credentials
from orchestrator.http.guard import Guard


def _boom(_: Request) -> JSONResponse:
    raise RuntimeError("a bug nobody foresaw")


def _fine(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real uvicorn server of a tiny app behind the guard; yields its URL and token."""
    app = Starlette(routes=[Route("/boom", _boom), Route("/fine", _fine)])
    app.state.credentials = Credentials(tmp_path)
    app.add_middleware(Guard, allowed_hosts=frozenset())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app.state.credentials.token
    server.should_exit = True
    thread.join(10)


def test_an_unexpected_error_is_a_json_500_with_an_id_in_the_log(
    served: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, token = served
    transport = httpx.HTTPTransport()
    with (
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, transport=transport
        ) as http,
        caplog.at_level(logging.ERROR, logger="orchestrator.http.guard"),
    ):
        r = http.get("/boom")
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/json"
        error_id = r.json()["error_id"]
        assert error_id in r.json()["error"] and "server log" in r.json()["error"]
        assert http.get("/fine").json() == {"ok": True}
        # Both requests went over one kept-alive connection.
        assert len(transport._pool.connections) == 1
    logged = [rec for rec in caplog.records if error_id in rec.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "a bug nobody foresaw" in str(logged[0].exc_info[1])
