"""Workers as local subprocesses of the orchestrator's own Python."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.apis.units import format_bytes
from orchestrator.backends.base import Backend, WorkerLaunch, WorkerProbe
from orchestrator.backends.gpus import devices_for, host_gpus
from orchestrator.errors import BackendError, InvalidRequest

_PAGE = os.sysconf("SC_PAGE_SIZE")


class ProcessBackend(Backend):
    """Each worker is ``python -m runtime`` in its own session.

    Workers survive an orchestrator crash (they wait for it to come back); after a
    restart they are found again by pid and start time. ``compute.mem`` is enforced
    by sampling each worker's resident memory and killing it past the limit.
    """

    name = "process"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._oom: dict[int, str] = {}
        self._stopping: set[int] = set()
        self._gpus = host_gpus()

    def check_job(self, api_spec: dict[str, Any]) -> None:
        """Refuse a job whose workers ask for more GPUs than the host has."""
        wanted = int(api_spec.get("compute", {}).get("gpu") or 0)
        if wanted > len(self._gpus):
            have = f"only {len(self._gpus)}" if self._gpus else "none (nvidia-smi found no GPU)"
            raise InvalidRequest(
                f"compute.gpu: each worker of this API asks for {wanted} GPU(s), but this host"
                f" has {have}; set compute.gpu to 0 to run on CPU"
            )

    def start_worker(self, launch: WorkerLaunch) -> dict[str, Any]:
        """Spawn ``python -m runtime`` for one worker, logging to its log file."""
        compute = launch.api_spec.get("compute", {})
        env = {**worker_environment(os.environ), **launch.env}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [_package_root(), launch.env.get("PYTHONPATH")])
        )
        gpus = devices_for(launch.slot, int(compute.get("gpu") or 0), self._gpus)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        python = self.settings.worker_python or sys.executable
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(launch.log_path, "ab") as log:
            try:
                child = subprocess.Popen(
                    [
                        python,
                        "-m",
                        "runtime",
                        "--transport",
                        launch.transport,
                        "--worker",
                        launch.worker_id,
                    ],
                    cwd=launch.project_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    umask=self.settings.worker_umask,
                )
            except OSError as e:
                raise BackendError(f"could not start worker process {python!r}: {e}") from e
        self._children[child.pid] = child
        return {
            "pid": child.pid,
            "start_ticks": _start_ticks(child.pid),
            "mem_limit": compute.get("mem"),
            "cuda_visible_devices": env["CUDA_VISIBLE_DEVICES"],
        }

    def probe_worker(self, handle: dict[str, Any]) -> WorkerProbe:
        """Reap or inspect the worker; kill it if it is over its memory limit."""
        pid = int(handle["pid"])
        child = self._children.get(pid)
        if child is not None:
            code = child.poll()
            alive = code is None
        else:  # started before a restart: not our child any more
            code = None
            alive = _same_process_alive(pid, handle.get("start_ticks"))
        if alive:
            self._enforce_memory(pid, handle.get("mem_limit"))
            return WorkerProbe(alive=True)
        self._children.pop(pid, None)
        oom = self._oom.pop(pid, None)
        self._stopping.discard(pid)
        return WorkerProbe(alive=False, exit_code=code, oom=oom is not None, message=oom)

    def stop_worker(self, handle: dict[str, Any], grace_s: float) -> None:
        """SIGTERM the worker's process group, then SIGKILL it after ``grace_s``."""
        pid = int(handle["pid"])
        if pid in self._stopping or not _same_process_alive(pid, handle.get("start_ticks")):
            return
        self._stopping.add(pid)
        _signal_group(pid, signal.SIGTERM)
        threading.Thread(
            target=self._kill_after, args=(pid, handle.get("start_ticks"), grace_s), daemon=True
        ).start()

    def _kill_after(self, pid: int, start_ticks: int | None, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            child = self._children.get(pid)
            if child is not None and child.poll() is not None:
                return
            if child is None and not _same_process_alive(pid, start_ticks):
                return
            time.sleep(0.1)
        _signal_group(pid, signal.SIGKILL)

    def _enforce_memory(self, pid: int, limit: int | None) -> None:
        if not limit or pid in self._oom:
            return
        rss = _tree_rss(pid)
        if rss > limit:
            self._oom[pid] = (
                f"used {format_bytes(rss)} of memory, over its compute.mem limit of"
                f" {format_bytes(limit)}, and was killed"
            )
            _signal_group(pid, signal.SIGKILL)

    def close(self) -> None:
        """Reap children that already exited; running workers are left to reconnect."""
        for child in list(self._children.values()):
            child.poll()


#: What a process worker keeps of the orchestrator's environment: never its secrets.
ENV_ALLOWLIST = frozenset({"PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME"})
ENV_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "OMP_", "OPENBLAS_", "MKL_", "CORTEX_WORKER_TRACE")


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the allowlisted part of ``environ`` a process worker starts from.

    The locale, time zone, paths, the CUDA/NVIDIA variables and the BLAS/OpenMP thread
    settings; the API's ``predictor.env`` is added on top by the caller.
    """
    return {
        key: value
        for key, value in environ.items()
        if key in ENV_ALLOWLIST or key.startswith(ENV_PREFIXES)
    }


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; fields start after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _same_process_alive(pid: int, start_ticks: int | None) -> bool:
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(fields[19]) == int(start_ticks)


def _tree_rss(pid: int) -> int:
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        fields = _stat_fields(current)
        if fields is None:
            continue
        total += int(fields[21]) * _PAGE
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return total
