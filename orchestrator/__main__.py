"""``python -m orchestrator [--host H] [--port P] [--backend B] [--home DIR] [--set KEY=VALUE]``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from orchestrator.http.server import serve
from orchestrator.settings import DEFAULT_HOST, DEFAULT_PORT, Settings, default_home

#: Settings given by their own flags, or set by the server itself: not ``--set`` ones.
_FIXED = ("home", "host", "port", "backend", "worker_umask")


def apply_overrides(settings: Settings, pairs: list[str]) -> Settings:
    """Return ``settings`` with ``KEY=VALUE`` overrides (e.g. ``visibility_timeout_s=5``)."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in fields or key in _FIXED:
            tunable = ", ".join(k for k in fields if k not in _FIXED)
            raise SystemExit(f"--set {pair}: expected KEY=VALUE with KEY one of: {tunable}")
        current = getattr(settings, key)
        try:
            if isinstance(current, bool):
                changes[key] = _parse_bool(raw)
            else:
                changes[key] = (
                    raw if current is None or isinstance(current, str) else type(current)(raw)
                )
        except ValueError:
            raise SystemExit(
                f"--set {pair}: {raw!r} is not a valid {type(current).__name__}"
            ) from None
    return dataclasses.replace(settings, **changes)


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--backend", default="process")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    add_security_flags(parser)
    args = parser.parse_args()
    settings = Settings(
        home=args.home or default_home(), host=args.host, port=args.port, backend=args.backend
    )
    settings = apply_overrides(settings, args.overrides)
    settings = dataclasses.replace(
        settings,
        tls_cert=args.tls_cert or settings.tls_cert,
        tls_key=args.tls_key or settings.tls_key,
        allowed_hosts=",".join(filter(None, [settings.allowed_hosts, *args.allowed_hosts])),
    )
    serve(settings)


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--tls-cert``, ``--tls-key`` and ``--allowed-host`` (shared with ``serve``)."""
    parser.add_argument("--tls-cert", default="", metavar="PEM", help="serve HTTPS: certificate")
    parser.add_argument("--tls-key", default="", metavar="PEM", help="serve HTTPS: private key")
    parser.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name clients may use besides loopback names and the bound address"
        " (repeatable)",
    )


if __name__ == "__main__":
    main()
