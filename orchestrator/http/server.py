"""Run the orchestrator with uvicorn: one per home, with settings it can run with."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Iterator

import uvicorn

from orchestrator.backends import BACKEND_CLASSES
from orchestrator.errors import OrchestratorError
from orchestrator.http.app import create_app
from orchestrator.settings import InvalidSetting, Settings
from orchestrator.store import integrity

log = logging.getLogger("orchestrator")


def serve(settings: Settings, log_level: str = "warning") -> None:
    """Serve until interrupted. Workers keep running across a restart and reconnect.

    Everything the server writes (database, logs, snapshots, token) is this user's only.
    A setting it cannot run with, a home another orchestrator runs on, or a damaged home
    stops it with one line (the second with ``HOME_IN_USE_EXIT``).
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("botocore", "boto3", "urllib3"):  # one line per client made, otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = dataclasses.replace(settings, worker_umask=os.umask(0o077))
    try:
        check_start(settings)
    except InvalidSetting as e:
        sys.exit(f"cortex-tui orchestrator: {e.message}")
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(home_lock(settings))
        except HomeInUse as e:
            print(f"cortex-tui orchestrator: {e.message}", file=sys.stderr)
            sys.exit(HOME_IN_USE_EXIT)
        except InvalidSetting as e:
            sys.exit(f"cortex-tui orchestrator: {e.message}")
        try:
            integrity.check(settings.home)
        except integrity.DamagedHome as e:
            sys.exit(f"cortex-tui orchestrator: {e}")
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


def check_start(settings: Settings) -> None:
    """Refuse settings the server cannot run with, before it touches its home.

    Raises:
        InvalidSetting: The message names the setting, its value and what is allowed.
    """
    settings.check()
    if settings.backend not in BACKEND_CLASSES:
        known = ", ".join(sorted(BACKEND_CLASSES))
        raise InvalidSetting(f"--backend {settings.backend}: unknown backend; give one of: {known}")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise InvalidSetting("give both --tls-cert and --tls-key, or neither")
    if settings.docker_shm_size != Settings.docker_shm_size:  # the default needs no docker-py
        _check_shm_size(settings.docker_shm_size)


def _check_shm_size(size: str) -> None:
    """Refuse a ``docker_shm_size`` docker-py cannot read (the docker backend hands it over)."""
    from docker.errors import DockerException
    from docker.utils import parse_bytes

    try:
        valid = parse_bytes(size) > 0
    except (DockerException, ValueError, OverflowError):
        valid = False
    if not valid:
        raise InvalidSetting(
            f"docker_shm_size={size}: not a size; give a number more than 0 with b, k, m or g,"
            " e.g. 256m"
        )


#: The exit status of an orchestrator refused because another one runs on its home
#: (``cortex_tui/embedded.py`` then waits for that one rather than reporting a failure).
#: EX_TEMPFAIL: uvicorn exits 3 on any failed start (a port in use), so not that.
HOME_IN_USE_EXIT = 75


class HomeInUse(OrchestratorError):
    """Another orchestrator runs on this home (the message names it)."""


@contextlib.contextmanager
def home_lock(settings: Settings) -> Iterator[None]:
    """Hold ``HOME/server.lock`` while the server runs: one orchestrator per home.

    Taken before the database is opened. It is ``flock``'s lock, so the kernel drops it
    when the process ends, however it ends: a killed server leaves no stale lock. Its
    descriptor is close-on-exec, so workers never hold it. The file names the holder
    (``url``, ``pid``) for the refusal of the next one.

    Raises:
        HomeInUse: Another process holds the lock.
    """
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = settings.home / "server.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise InvalidSetting(f"{path}: cannot be opened ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HomeInUse(_in_use_message(settings)) from None
        except OSError as e:  # a filesystem without locks (ENOLCK, EOPNOTSUPP)
            raise InvalidSetting(
                f"{path}: cannot be locked ({e.strerror}): put CORTEX_TUI_HOME on a local"
                " filesystem"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"url": settings.url, "pid": os.getpid()}).encode())
        yield
    finally:
        os.close(fd)


def _in_use_message(settings: Settings) -> str:
    """Name the orchestrator that holds the home: from its lock file, else ``server.json``."""
    for name in ("server.lock", "server.json"):
        try:
            record = json.loads((settings.home / name).read_text())
            holder = f" at {record['url']} (pid {int(record['pid'])})"
            break
        except (OSError, ValueError, KeyError, TypeError):
            continue
    else:
        holder = ""
    return (
        f"another orchestrator already runs on the home {settings.home}{holder}: use it,"
        " or stop it first (cortex-tui down)"
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
