"""The worker's HTTP client for the orchestrator, patient across orchestrator restarts.

A minimal HTTP/1.1 client over one keep-alive socket, standard library only: the
orchestrator answers JSON with a Content-Length, so this is all a worker needs, and
its imports cost a few milliseconds where ``http.client`` (which pulls in the email
parser and ssl) costs ~30 and an HTTP library a few hundred. Every worker start pays
that, on every job.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from runtime.errors import OrchestratorUnreachable, WorkerError
from runtime.protocol import DEFAULT_ORCHESTRATOR_WAIT_S

_MAX_HEADER_LINES = 100


class ProtocolError(ConnectionError):
    """The orchestrator's answer was not the HTTP this client understands."""


class OrchestratorClient:
    """Calls ``/_cortex/workers/<id>/...``; retries while the orchestrator is away.

    Every call is safe to repeat: acks of finished batches are ignored, and a
    lease lost with a dropped response simply expires back to the queue.
    """

    def __init__(
        self,
        server: str,
        worker_id: str,
        secret: str,
        wait_s: float = DEFAULT_ORCHESTRATOR_WAIT_S,
        timeout_s: float = 60.0,
        server_cert: str | None = None,
        server_uid: int | None = None,
    ) -> None:
        url = urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise WorkerError(f"the orchestrator URL must be http(s)://host:port, got {server!r}")
        self._tls = _tls_context(server_cert) if url.scheme == "https" else None
        self._tls_host = url.hostname
        self._address = (url.hostname, url.port or (443 if self._tls else 80))
        self._host_header = url.netloc
        self._authorization = f"Bearer {secret}"
        self._server_uid = server_uid
        self._base = f"{url.path.rstrip('/')}/_cortex/workers/{worker_id}"
        self._timeout = timeout_s
        self._wait_s = wait_s
        self._sock: socket.socket | None = None
        self._reader: BinaryIO | None = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request, retrying transport errors and 5xx answers with back-off."""
        data = b"" if body is None else json.dumps(body).encode()
        deadline = time.monotonic() + self._wait_s
        delay = 0.1
        while True:
            try:
                status, text = self._exchange(method, f"{self._base}/{path}", data)
                if status < 500:
                    break
                problem = f"HTTP {status}: {text[:200]}"
            except OSError as e:
                problem = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise OrchestratorUnreachable(
                    f"the orchestrator did not answer for {self._wait_s:g}s ({problem})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        if status >= 400:
            try:
                message = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                message = text
            raise WorkerError(f"the orchestrator refused {path}: {message}")
        return json.loads(text)

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None

    def _exchange(self, method: str, path: str, data: bytes) -> tuple[int, str]:
        """One request and its response; a kept-alive connection the server dropped is redialled."""
        reused = self._sock is not None
        try:
            return self._request(method, path, data)
        except OSError:
            self.close()
            if not reused:
                raise
        return self._request(method, path, data)  # the server closed an idle connection

    def _request(self, method: str, path: str, data: bytes) -> tuple[int, str]:
        if self._sock is None:
            _check_listener(self._address[1], self._server_uid)
            sock = socket.create_connection(self._address, timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._tls_host)
            self._sock = sock
            self._reader = self._sock.makefile("rb")
        assert self._reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            f"Authorization: {self._authorization}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        try:
            self._sock.sendall(head.encode() + data)
            status, headers = _read_head(self._reader)
            body = _read_body(self._reader, headers)
        except OSError:
            self.close()
            raise
        delimited = "content-length" in headers or "transfer-encoding" in headers
        if headers.get("connection", "").lower() == "close" or not delimited:
            self.close()
        return status, body.decode()


class NotTheOrchestrator(ConnectionError):
    """Another user's process listens on the orchestrator's port (it is down meanwhile)."""


def _check_listener(port: int, expected_uid: int | None) -> None:
    """Refuse to send the secret to a loopback port another user listens on.

    While the orchestrator is down, any local user may listen on its port to collect
    the secrets of the workers that retry. Linux names each listening socket's owner in
    ``/proc/net/tcp``; the worker retries (as if the orchestrator were away) until the
    listener is the orchestrator's user again.
    """
    if expected_uid is None:
        return
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                if int(fields[7]) != expected_uid:
                    raise NotTheOrchestrator(
                        f"port {port} is held by uid {fields[7]}, not the orchestrator's"
                        f" ({expected_uid}): waiting for the orchestrator"
                    )
                return


def _tls_context(server_cert: str | None) -> Any:
    """Return an SSL context for an HTTPS orchestrator (``ssl`` is imported only here).

    With ``server_cert`` (the PEM the orchestrator serves, handed over at launch), that
    certificate is the only one trusted, whatever names it carries: the worker reaches the
    orchestrator on loopback, a name no public certificate has. Without it, the system's
    certificate authorities and the usual name check apply.
    """
    import ssl

    if not server_cert:
        return ssl.create_default_context()
    # The first certificate of the PEM is the server's own: trusting only it (not the CA
    # of a full chain) pins this one server.
    leaf = server_cert.split("-----END CERTIFICATE-----", 1)[0] + "-----END CERTIFICATE-----\n"
    context = ssl.create_default_context(cadata=leaf)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def _read_head(reader: BinaryIO) -> tuple[int, dict[str, str]]:
    line = reader.readline(65537)
    if not line:
        raise ProtocolError("the connection closed before an answer")
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP status line: {line[:80]!r}")
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n"):
            return int(parts[1]), headers
        if not line:
            raise ProtocolError("the connection closed in the middle of the headers")
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise ProtocolError("too many header lines")


def _read_body(reader: BinaryIO, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := _number(reader.readline(1024).split(b";")[0], 16):
            chunks.append(_read_exactly(reader, size))
            reader.readline(1024)
        while reader.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)
    if "content-length" not in headers:
        return reader.read()  # the answer ends with the connection
    return _read_exactly(reader, _number(headers["content-length"].encode(), 10))


def _number(text: bytes, base: int) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise ProtocolError(f"not a length: {text[:40]!r}") from None


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise ProtocolError(f"the answer ended after {len(data)} of {size} bytes")
    return data
