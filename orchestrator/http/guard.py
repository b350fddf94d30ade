"""The door every request passes: Host, credentials, content type, and a last-resort 500.

One ASGI middleware, in this order:

1. ``Host`` must name this server: a loopback name, the bound address, or an
   ``allowed_hosts`` entry (else 400). A web page that rebinds its own DNS name to
   127.0.0.1 sends its own name, and is refused here.
2. Credentials: worker routes (``/_cortex/workers/<worker_id>/...``) take only that
   worker's own secret; every other route takes only the user's token (else 401,
   or 403 for a credential of the wrong kind).
3. A request with a body must say ``Content-Type: application/json`` (else 415), so
   a page cannot slip JSON past the browser's preflight as ``text/plain`` or a form.
4. An unexpected exception answers JSON 500 with an error id that is also in the
   server log, and the connection stays open for the next request.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from orchestrator.auth import Credentials, bearer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WORKER_PREFIX = "/_cortex/workers/"
_HOW_TO_GET = (
    "send Authorization: Bearer <token>; the token is in HOME/token of the orchestrator"
    " (print it with: cortex-tui token), or set CORTEX_TUI_TOKEN for the CLI"
)
log = logging.getLogger("orchestrator.http.guard")


class Guard:
    """Wraps the app; ``credentials`` is read from ``app.state`` at each request."""

    def __init__(self, app: App, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts) | LOOPBACK_NAMES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message, extra = refusal
            await _answer(send, status, {"error": message}, extra)
            return
        await self._call_safely(scope, receive, send)

    def _refusal(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, dict[str, str]] | None:
        host = _host_name(headers.get("host", ""))
        if host not in self.allowed_hosts:
            return (
                400,
                f"Host {headers.get('host', '')!r} is not a name this server answers for"
                " (loopback names, the address it is bound to unless that is every interface,"
                " and --allowed-host entries: start it with --allowed-host NAME for each name"
                " or address clients use)",
                {},
            )
        credentials: Credentials = scope["app"].state.credentials
        presented = bearer(headers.get("authorization"))
        path: str = scope["path"]
        if path.startswith(WORKER_PREFIX):
            worker_id = path[len(WORKER_PREFIX) :].split("/", 1)[0]
            if presented is None:
                return 401, "worker routes need the worker's own secret", _CHALLENGE
            if credentials.is_worker(worker_id, presented):
                pass
            elif credentials.is_user(presented):
                return 403, "worker routes take the worker's own secret, not the user's token", {}
            else:
                return 403, f'that is not the secret of worker "{worker_id}"', {}
        elif presented is None:
            return 401, f"this server needs a token: {_HOW_TO_GET}", _CHALLENGE
        elif not credentials.is_user(presented):
            return 401, f"the token is not this server's: {_HOW_TO_GET}", _CHALLENGE
        if _has_body(headers) and not _is_json(headers.get("content-type", "")):
            return (
                415,
                f"Content-Type {headers.get('content-type', '(none)')!r} is not accepted:"
                " send the body as application/json",
                {},
            )
        return None

    async def _call_safely(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:  # a stream broke mid-way: cutting it short is how the client learns
                raise
            error_id = secrets.token_hex(6)
            log.exception("error %s in %s %s", error_id, scope["method"], scope["path"])
            await _answer(
                send,
                500,
                {
                    "error": f"internal error {error_id}: the server log has the details",
                    "error_id": error_id,
                },
                {},
            )


_CHALLENGE = {"www-authenticate": "Bearer"}
_HOST = re.compile(r"(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::[0-9]{1,5})?")


def _host_name(host: str) -> str:
    """Return the name of a ``Host`` header without its port (``[::1]:80`` → ``::1``).

    Anything but a name or bracketed address with an optional numeric port gives "".
    """
    match = _HOST.fullmatch(host.strip().lower())
    if match is None:
        return ""
    return match.group(1) or match.group(2)


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "").strip()
    return "transfer-encoding" in headers or (bool(length) and length != "0")


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def _answer(send: Send, status: int, document: dict[str, Any], extra: dict[str, str]) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
