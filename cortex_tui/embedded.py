"""Finding the orchestrator, and starting or stopping the embedded one of a home.

The server URL comes from ``--server``, else ``CORTEX_TUI_SERVER``, else the default
loopback address. When nothing answers at a loopback URL, the orchestrator is started
in the background as ``python -m orchestrator`` (a separate process: this package never
imports the server), with its output in ``HOME/server.log``. The server itself records
``HOME/server.json`` (``url``, ``pid``, ``backend``) while it runs.

``cortex-tui down`` leaves ``HOME/down`` behind: until a command that changes something
(``up``, ``deploy``, ``submit``, ``delete``) starts the orchestrator again, commands that
only read say it was stopped rather than quietly starting it (and its jobs) again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cortex_tui.client import CortexClient
from cortex_tui.errors import (
    ApiError,
    CortexTuiError,
    EmbeddedServerError,
    InputError,
    ServerUnreachable,
    StoppedByDown,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7311
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
_LOG_TAIL_LINES = 15
#: The file ``cortex-tui down`` leaves in the home (see the module's docstring).
DOWN_MARKER = "down"
#: How an orchestrator exits when another one holds its home (orchestrator/http/server.py).
HOME_IN_USE_EXIT = 75
# The orchestrator ships beside cortex_tui; its parent directory is put on the child's
# PYTHONPATH so that a checkout (not only an installed wheel) starts the same copy.
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ServerRecord:
    """What a running orchestrator wrote to ``HOME/server.json``."""

    url: str
    pid: int
    backend: str


def resolve_url(flag: str | None) -> str:
    """Return the orchestrator URL: ``--server``, ``CORTEX_TUI_SERVER`` or the default.

    Raises:
        InputError: The URL given is not an ``http://`` or ``https://`` one with a host.
    """
    given, source = flag, "--server"
    if not given:
        given, source = os.environ.get("CORTEX_TUI_SERVER"), "CORTEX_TUI_SERVER"
    url = (given or DEFAULT_URL).rstrip("/")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise InputError(
            f"{source} {given!r}: not an orchestrator URL; give http://HOST:PORT or"
            f" https://HOST:PORT, e.g. {DEFAULT_URL}"
        )
    return url


def token_source(url: str, home: Path) -> Callable[[], str | None]:
    """Return where a client finds its token: ``CORTEX_TUI_TOKEN``, else ``HOME/token``.

    The home's token is sent only to a loopback URL: a server elsewhere has its own, which
    ``CORTEX_TUI_TOKEN`` supplies.
    """
    local = is_loopback_url(url)

    def token() -> str | None:
        if given := os.environ.get("CORTEX_TUI_TOKEN", "").strip():
            return given
        if not local:
            return None
        check_listener(url)
        return read_token(home)

    return token


def check_listener(url: str) -> None:
    """Refuse to send this home's token to a loopback port another local user listens on.

    While the orchestrator is down, any local user may listen on its port and collect the
    token from the next command. Linux names each listening socket's owner in
    ``/proc/net/tcp``; elsewhere there is nothing to check.

    Raises:
        CortexTuiError: The port's listener belongs to another user.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return
    owner = listener_uid(port)
    if owner is not None and owner != os.getuid():
        raise CortexTuiError(
            f"the server at {url} belongs to another user (uid {owner}), not to you: the"
            " token was not sent (stop that process, or set CORTEX_TUI_TOKEN to send one"
            " deliberately)"
        )


def listener_uid(port: int) -> int | None:
    """Return the uid owning the socket that listens on loopback ``port``, if known."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, uid = fields[1], fields[3], fields[7]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                return int(uid)
    return None


def read_token(home: Path) -> str | None:
    """Return the token in ``HOME/token``, or None when there is none (yet)."""
    try:
        return (home / "token").read_text().strip() or None
    except OSError:
        return None


def is_loopback_url(url: str) -> bool:
    """Return whether ``url`` names a loopback host."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def home_dir() -> Path:
    """Return ``CORTEX_TUI_HOME`` or ``~/.cortex-tui``."""
    return Path(os.environ.get("CORTEX_TUI_HOME") or Path.home() / ".cortex-tui").expanduser()


def display_path(path: Path) -> str:
    """Return ``path`` with the user's home directory written as ``~``."""
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def loopback_address(url: str) -> tuple[str, int] | None:
    """Return the host and port to start a server on for a loopback ``http`` URL, else None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http":
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    if host == "localhost":
        return DEFAULT_HOST, port
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version != 4 or not address.is_loopback:
        return None
    return host, port


def orchestrator_command(
    home: Path,
    host: str,
    port: int,
    backend: str | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """Return the ``python -m orchestrator`` command line for these settings."""
    command = [sys.executable, "-m", "orchestrator", "--home", str(home)]
    command += ["--host", host, "--port", str(port)]
    if backend is not None:
        command += ["--backend", backend]
    for pair in overrides:
        command += ["--set", pair]
    return command


def orchestrator_env() -> dict[str, str]:
    """Return the environment for an orchestrator process (this checkout on its path)."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(_PACKAGE_ROOT) not in paths:
        env["PYTHONPATH"] = os.pathsep.join([str(_PACKAGE_ROOT), *paths])
    return env


def ensure_server(
    client: CortexClient,
    home: Path,
    announce: Callable[[str], None],
    overrides: Sequence[str] = (),
    *,
    after_down: bool = False,
) -> bool:
    """Make sure an orchestrator answers at the client's URL; return whether one was started.

    Args:
        after_down: Start it even if ``cortex-tui down`` stopped it (commands that change
            something do; commands that only read do not).

    Raises:
        ServerUnreachable: Nothing answers and the URL is not a loopback one.
        StoppedByDown: Nothing answers, ``cortex-tui down`` stopped it, and not ``after_down``.
        EmbeddedServerError: The embedded orchestrator could not be started.
    """
    try:
        client.health()
        return False
    except ServerUnreachable:
        address = loopback_address(client.base_url)
        if address is None:
            raise
    except ApiError as e:
        token_given = os.environ.get("CORTEX_TUI_TOKEN", "").strip()
        if e.status_code == 401 and is_loopback_url(client.base_url) and not token_given:
            raise _not_this_homes(client.base_url, home) from None
        raise
    if not after_down and (home / DOWN_MARKER).exists():
        raise StoppedByDown(client.base_url, display_path(home))
    start_embedded(client, home, *address, overrides=overrides)
    log = display_path(home / "server.log")
    announce(
        f"started the embedded orchestrator at {client.base_url} (home {display_path(home)},"
        f" log {log}; stop it with: cortex-tui down)"
    )
    return True


def _not_this_homes(url: str, home: Path) -> CortexTuiError:
    """The error for a loopback orchestrator that refused this home's token."""
    return CortexTuiError(
        f"the orchestrator at {url} is not the one of {display_path(home)} (it refused this"
        " home's token): another home's orchestrator listens on that port. Use that home"
        " (CORTEX_TUI_HOME), or give this one its own port: --server"
        f" http://{DEFAULT_HOST}:<port> or CORTEX_TUI_SERVER"
    )


def start_embedded(
    client: CortexClient, home: Path, host: str, port: int, overrides: Sequence[str] = ()
) -> None:
    """Start the orchestrator of ``home`` in the background and wait until it answers."""
    running = read_server_record(home)
    if running is not None and running.url != client.base_url and pid_alive(running.pid):
        raise EmbeddedServerError(
            f"the orchestrator of {display_path(home)} already runs at {running.url}: use"
            f" --server {running.url}, or stop it first with: cortex-tui down"
        )
    log_path = home / "server.log"
    try:
        home.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            offset = log.tell()
            process = subprocess.Popen(
                orchestrator_command(home, host, port, overrides=overrides),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=home,
                env=orchestrator_env(),
                start_new_session=True,  # outlives this command and ignores its Ctrl-C
            )
    except OSError as e:
        raise EmbeddedServerError(
            f"cannot start the embedded orchestrator in {display_path(home)}: {e.strerror}"
            " (set CORTEX_TUI_HOME to a directory you can write to)"
        ) from None
    if _wait_until_up(client, process):
        (home / DOWN_MARKER).unlink(missing_ok=True)
        return
    if process.poll() is None:
        process.terminate()
        what = f"did not answer within {START_TIMEOUT_S:.0f}s and was stopped"
    else:
        what = f"exited during start-up (exit code {process.returncode})"
    raise EmbeddedServerError(
        f"the embedded orchestrator at {client.base_url} {what};"
        f" the end of {display_path(log_path)}:\n{_log_tail(log_path, offset)}"
    )


def _wait_until_up(client: CortexClient, process: subprocess.Popen[bytes]) -> bool:
    """Return whether the orchestrator answers within ``START_TIMEOUT_S``.

    One refused because another start of this home holds it (another command started it
    first) waits for that one to answer instead.
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _answers(client):
            return True
        if process.poll() not in (None, HOME_IN_USE_EXIT):
            return _answers(client)
        time.sleep(0.1)
    return _answers(client)


def _answers(client: CortexClient) -> bool:
    try:
        client.health()
    except ServerUnreachable:
        return False
    return True


def _log_tail(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", errors="replace")
    lines = text.rstrip("\n").splitlines()[-_LOG_TAIL_LINES:] or ["(the log is empty)"]
    return "\n".join(f"  {line}" for line in lines)


def read_server_record(home: Path) -> ServerRecord | None:
    """Return what ``HOME/server.json`` says, or None if it is missing or unreadable."""
    try:
        data = json.loads((home / "server.json").read_text())
        return ServerRecord(
            url=str(data["url"]), pid=int(data["pid"]), backend=str(data["backend"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    """Return whether a process is alive (a zombie is not)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill()
    return stat[stat.rindex(")") + 2] not in "ZX"


def running_server(home: Path) -> ServerRecord | None:
    """Return the orchestrator ``HOME/server.json`` records if it still runs, else None."""
    record = read_server_record(home)
    if record is None or not pid_alive(record.pid) or not _is_orchestrator(record.pid):
        return None
    return record


def _is_orchestrator(pid: int) -> bool:
    """Return False only when procfs shows the pid now runs something else (pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"orchestrator" in cmdline


def stop_embedded(home: Path) -> ServerRecord | None:
    """Stop the orchestrator recorded in ``HOME/server.json``; return it, or None if none runs.

    Leaves ``HOME/down`` behind, so that commands that only read do not start it again.

    Raises:
        EmbeddedServerError: The process could not be signalled or would not exit.
    """
    with contextlib.suppress(OSError):
        (home / DOWN_MARKER).write_text(f"{time.time():.0f}\n")
    record = running_server(home)
    if record is None:
        return None
    _signal(record.pid, signal.SIGTERM)
    if _wait_gone(record.pid, STOP_TIMEOUT_S):
        return record
    _signal(record.pid, signal.SIGKILL)
    if _wait_gone(record.pid, 5.0):
        return record
    raise EmbeddedServerError(f"the orchestrator (pid {record.pid}) does not exit")


def _signal(pid: int, signum: signal.Signals) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError as e:
        raise EmbeddedServerError(f"cannot stop the orchestrator (pid {pid}): {e}") from None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
