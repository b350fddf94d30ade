"""The worker's own HTTP client against real sockets: keep-alive, dropped connections, framing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runtime.client import OrchestratorClient
from runtime.errors import OrchestratorUnreachable, WorkerError

Reply = Callable[[BaseHTTPRequestHandler, dict[str, object]], None]


class _Orchestrator(ThreadingHTTPServer):
    """A real HTTP server that records requests and answers with ``reply``."""

    daemon_threads = True

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[tuple[str, str, dict[str, object]]] = []
        self.authorizations: list[str | None] = []
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, object]:
        self.connections += 1
        return super().get_request()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Orchestrator

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(("POST", self.path, body))
        self.server.authorizations.append(self.headers.get("Authorization"))
        self.server.reply(self, body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


def _json(handler: BaseHTTPRequestHandler, status: int, value: object, **headers: str) -> None:
    data = json.dumps(value).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, text in headers.items():
        handler.send_header(name, text)
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def serve() -> Iterator[Callable[[Reply], _Orchestrator]]:
    servers: list[_Orchestrator] = []

    def start(reply: Reply) -> _Orchestrator:
        server = _Orchestrator(reply)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_calls_share_one_kept_alive_connection(serve: Callable[[Reply], _Orchestrator]) -> None:
    server = serve(lambda h, body: _json(h, 200, {"echo": body}))
    client = OrchestratorClient(server.url, "job-w0", "s3cret")
    try:
        for n in range(5):
            assert client.call("POST", "next", {"n": n}) == {"echo": {"n": n}}
        assert client.call("GET", "spec") == {"echo": {}}
    finally:
        client.close()
    assert server.connections == 1
    assert [path for _, path, _ in server.requests] == ["/_cortex/workers/job-w0/next"] * 5 + [
        "/_cortex/workers/job-w0/spec"
    ]
    assert server.authorizations == ["Bearer s3cret"] * 6  # the worker's own secret


def test_a_connection_the_server_dropped_is_redialled_at_once(
    serve: Callable[[Reply], _Orchestrator],
) -> None:
    # The server closes every connection after answering, without saying so (as one does
    # when a keep-alive connection sat idle past its timeout).
    def reply(handler: BaseHTTPRequestHandler, body: dict[str, object]) -> None:
        _json(handler, 200, {"ok": True})
        handler.close_connection = True

    server = serve(reply)
    client = OrchestratorClient(server.url, "w", "s3cret", wait_s=0)  # no time for a retry loop
    try:
        for _ in range(3):
            assert client.call("POST", "heartbeat", {}) == {"ok": True}
    finally:
        client.close()
    assert server.connections == 3
    assert len(server.requests) == 3


def test_chunked_answers_are_read_whole(serve: Callable[[Reply], _Orchestrator]) -> None:
    def reply(handler: BaseHTTPRequestHandler, body: dict[str, object]) -> None:
        data = json.dumps({"items": list(range(1000))}).encode()
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, len(data), 777):
            chunk = data[start : start + 777]
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    server = serve(reply)
    client = OrchestratorClient(server.url, "w", "s3cret")
    try:
        assert client.call("POST", "next", {}) == {"items": list(range(1000))}
        assert client.call("POST", "next", {}) == {"items": list(range(1000))}
    finally:
        client.close()
    assert server.connections == 1


def test_a_refusal_names_the_call_and_the_orchestrators_reason(
    serve: Callable[[Reply], _Orchestrator],
) -> None:
    server = serve(lambda h, body: _json(h, 400, {"error": "want: must be an integer"}))
    client = OrchestratorClient(server.url, "w", "s3cret")
    try:
        with pytest.raises(WorkerError, match="refused next: want: must be an integer"):
            client.call("POST", "next", {"want": "x"})
    finally:
        client.close()


def test_server_errors_are_retried_until_an_answer(serve: Callable[[Reply], _Orchestrator]) -> None:
    answers = iter([503, 502, 200])

    def reply(handler: BaseHTTPRequestHandler, body: dict[str, object]) -> None:
        status = next(answers)
        _json(handler, status, {"ok": status == 200})

    server = serve(reply)
    client = OrchestratorClient(server.url, "w", "s3cret", wait_s=10)
    try:
        assert client.call("POST", "state", {"state": "running"}) == {"ok": True}
    finally:
        client.close()
    assert len(server.requests) == 3


def test_garbage_and_silence_end_in_a_clear_error() -> None:
    # A listener that answers with something that is not HTTP, then one that is gone.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def babble() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        threading.Thread(target=babble, daemon=True).start()
        client = OrchestratorClient(f"http://127.0.0.1:{port}", "w", "s3cret", wait_s=0.3)
        with pytest.raises(OrchestratorUnreachable, match="not an HTTP status line"):
            client.call("GET", "spec")
        client.close()
    client = OrchestratorClient(f"http://127.0.0.1:{port}", "w", "s3cret", wait_s=0.3)
    with pytest.raises(OrchestratorUnreachable, match=r"did not answer for 0\.3s"):
        client.call("GET", "spec")


def test_only_http_and_https_urls_are_accepted() -> None:
    for url in ("ftp://example.invalid", "example.invalid:80", "http://"):
        with pytest.raises(WorkerError, match=r"must be http\(s\)://host:port"):
            OrchestratorClient(url, "w", "s3cret")
