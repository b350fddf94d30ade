"""Run the orchestrator with uvicorn."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import sys

import uvicorn

from orchestrator.http.app import create_app
from orchestrator.settings import Settings
from orchestrator.store import integrity

log = logging.getLogger("orchestrator")


def serve(settings: Settings, log_level: str = "warning") -> None:
    """Serve until interrupted. Workers keep running across a restart and reconnect.

    Everything the server writes (database, logs, snapshots, token) is this user's only.
    A damaged home, or half a TLS configuration, stops it with one line.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("botocore", "boto3", "urllib3"):  # one line per client made, otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = dataclasses.replace(settings, worker_umask=os.umask(0o077))
    try:
        integrity.check(settings.home)
    except integrity.DamagedHome as e:
        sys.exit(f"cortex-tui orchestrator: {e}")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        sys.exit("cortex-tui orchestrator: give both --tls-cert and --tls-key, or neither")
    if not is_loopback(settings.host):
        log.warning(exposure_warning(settings))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )


def is_loopback(host: str) -> bool:
    """Return whether ``host`` is a loopback name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(settings: Settings) -> str:
    """Return the warning printed when the server listens beyond loopback."""
    transport = (
        "over HTTPS"
        if settings.tls_cert
        else "in plain HTTP: the token and every job's data cross the network readable by"
        " anyone on it (use --tls-cert/--tls-key, or a TLS reverse proxy)"
    )
    return (
        f"listening on {settings.host}, beyond loopback: anyone who can reach this address and"
        f" holds the token can deploy and run code as this user, {transport}"
    )
