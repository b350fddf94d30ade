"""Credentials: the user's API token, and each worker's own secret and lease tokens.

Two files in the home, both mode 0600 and made at first start:

- ``token``: the bearer token every user-facing route asks for (``cortex-tui token``).
- ``worker.key``: the key worker credentials are derived from. A worker's secret is
  ``HMAC(key, "worker:" + worker_id)``, handed to it at launch in its environment; a
  batch handed to a worker comes with a lease token ``HMAC(key, "lease:" + batch_id +
  ":" + worker_id)`` that its ack, failure or release must carry back. Nothing
  derived is stored, so a restarted orchestrator checks the credentials of the workers
  that outlived it, and the same credentials work over any transport, not just loopback.

Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

TOKEN_FILE = "token"
KEY_FILE = "worker.key"
#: The shortest token or key accepted from its file (both are made far longer).
MIN_SECRET_CHARS = 32


class Credentials:
    """The home's token and worker key, loaded (or made) once at start."""

    def __init__(self, home: Path) -> None:
        self.token = _read_or_create(home / TOKEN_FILE, lambda: secrets.token_urlsafe(32))
        self._key = _read_or_create(home / KEY_FILE, lambda: secrets.token_hex(32)).encode()

    def is_user(self, presented: str) -> bool:
        """Return whether ``presented`` is the user's token."""
        return hmac.compare_digest(presented.encode(), self.token.encode())

    def worker_secret(self, worker_id: str) -> str:
        """Return the secret of ``worker_id`` (what its launch environment carries)."""
        return self._sign(f"worker:{worker_id}")

    def is_worker(self, worker_id: str, presented: str) -> bool:
        """Return whether ``presented`` is ``worker_id``'s own secret."""
        return hmac.compare_digest(presented.encode(), self.worker_secret(worker_id).encode())

    def job_key(self, job_id: str) -> str:
        """Return the key that signs what the orchestrator writes for a job's remote workers
        (its work messages, ``spec.json``, ``control.json``); each of them gets it."""
        return self._sign(f"job:{job_id}")

    def lease_token(self, batch_id: int, worker_id: str) -> str:
        """Return the token proving that ``batch_id`` was leased to ``worker_id``."""
        return self._sign(f"lease:{batch_id}:{worker_id}")[:32]

    def is_lease(self, batch_id: int, worker_id: str, presented: object) -> bool:
        """Return whether ``presented`` is the lease token of ``batch_id`` for ``worker_id``."""
        if not isinstance(presented, str):
            return False
        return hmac.compare_digest(
            presented.encode(), self.lease_token(batch_id, worker_id).encode()
        )

    def _sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()


def bearer(header: str | None) -> str | None:
    """Return the credential of an ``Authorization: Bearer ...`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """Return the secret in ``path``, creating it (mode 0600, atomically) when missing.

    A file too short to be a secret (empty after a power loss, or written by hand) is
    replaced: an empty key would make every credential guessable.
    """
    try:
        value = path.read_text().strip()
        if len(value) >= MIN_SECRET_CHARS:
            os.chmod(path, 0o600)
            return value
        path.unlink()
    except FileNotFoundError:
        pass
    value = make()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process made it first: use theirs
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        os.unlink(tmp)
    return value
