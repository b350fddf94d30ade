"""Fixtures that run the real orchestrator (a subprocess on a free loopback port)
with real worker subprocesses, against a temporary home."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dockerkit
import httpx
import motokit
import pytest

from orchestrator.status import JobStatus

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_apis"
TERMINAL = {status.value for status in JobStatus if status.is_terminal}
# Quick delivery timings so fault tests finish in seconds.
LIVE_WORKER_STATES = ("pending", "initializing", "running")
FAST = {
    "visibility_timeout_s": "3",
    "heartbeat_interval_s": "1",
    "tick_s": "0.2",
    "stop_grace_s": "3",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real orchestrator process and an HTTP client for it."""

    def __init__(
        self,
        home: Path,
        backend: str = "process",
        env: dict[str, str] | None = None,
        **settings: str,
    ) -> None:
        self.home = home
        self.env = env or {}
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Job sources may read the test's own directory (where its files are written).
        self.settings = {**FAST, "source_roots": str(home.parent), **settings}
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.moto: motokit.MotoServer | None = None

    # --- process control -------------------------------------------------
    def start(self) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "orchestrator",
            "--home",
            str(self.home),
            "--port",
            str(self.port),
            "--backend",
            self.backend,
        ]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        with open(self.home / "server-test.log", "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.token is not None:
                self.http.headers["Authorization"] = f"Bearer {self.token}"
            try:
                if self.http.get("/_cortex/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"orchestrator exited: {(self.home / 'server-test.log').read_text()}"
                )
            time.sleep(0.1)
        raise RuntimeError("orchestrator did not come up in 20s")

    @property
    def token(self) -> str | None:
        """The token the server wrote to its home (None before its first start)."""
        try:
            return (self.home / "token").read_text().strip() or None
        except OSError:
            return None

    def worker_secret(self, worker_id: str) -> str:
        """The secret a worker was launched with: ``HMAC(HOME/worker.key, "worker:<id>")``.

        Computed the way ``orchestrator/auth.py`` does, from the key file, as a test can
        (being root) and another local user cannot.
        """
        key = (self.home / "worker.key").read_text().strip().encode()
        return hmac.new(key, f"worker:{worker_id}".encode(), hashlib.sha256).hexdigest()

    def kill(self) -> None:
        """SIGKILL the orchestrator (its workers live on)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def worker_pids(self) -> list[int]:
        """Pids of this home's workers that are still alive (from the store's handles)."""
        import sqlite3

        db = self.home / "cortex.db"
        if not db.exists():
            return []
        with sqlite3.connect(db) as conn:
            handles = [json.loads(h) for (h,) in conn.execute("SELECT handle FROM worker")]
        pids = []
        for handle in handles:
            pid = handle.get("pid")
            if pid and _alive(pid):
                pids.append(pid)
        return pids

    def worker_containers(self) -> list[Any]:
        """Containers of this home's workers (docker: by label; aws: moto's, by name)."""
        if self.backend == "aws":
            return motokit.home_containers(self.home)
        if self.backend != "docker":
            return []
        return dockerkit.home_containers(self.home)

    def aws_leftovers(self) -> list[str]:
        """This home's active Batch jobs, SQS queues and job containers (aws backend only)."""
        if self.backend != "aws" or self.moto is None:
            return []
        found = motokit.home_leftovers(self.moto, self.home)
        return [f"{kind}: {name}" for kind, names in found.items() for name in names]

    def cleanup(self) -> list[int | str]:
        """Stop the server; kill and return any worker processes or containers left behind."""
        # Workers of ended jobs exit on their own; an aws job's queues go once they have. On a
        # loaded machine (four test workers on two cores) a worker takes seconds to start.
        deadline = time.monotonic() + (30 if self.backend == "aws" else 20)
        while (
            self.worker_pids() or self.worker_containers() or self.aws_leftovers()
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
        left_on_aws: list[int | str] = list(self.aws_leftovers())
        self.stop()
        if self.backend == "aws":
            motokit.remove_home_containers(self.home)
        left: list[int | str] = list(self.worker_pids())
        for pid in left:
            with contextlib.suppress(OSError):
                os.killpg(int(pid), signal.SIGKILL)
        if self.backend == "docker":
            left += dockerkit.remove_home_containers(self.home)
        self.http.close()
        return left + left_on_aws

    def set_up_aws(self, moto: motokit.MotoServer) -> None:
        """Point this server at a moto server and make the home's AWS resources there.

        ``cortex-tui aws setup`` makes them, as a user would. Images stay local (moto runs
        them on this engine); workers get moto's endpoint and dummy keys.
        """
        self.moto = moto
        self.env = {**self.env, **moto.env}
        keys = ",".join(f"{k}={v}" for k, v in motokit.DUMMY_KEYS.items())
        self.settings = {**self.settings, "aws_image_registry": "", "aws_worker_env": keys}
        done = subprocess.run(
            [sys.executable, "-m", "cortex_tui", "aws", "setup"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, **self.env, "CORTEX_TUI_HOME": str(self.home)},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    # --- API helpers -----------------------------------------------------
    def deploy(self, project_dir: Path) -> dict[str, Any]:
        # A cold docker image build can take minutes on a loaded machine.
        r = self.http.post("/_cortex/apis", json={"project_dir": str(project_dir)}, timeout=600)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def submit(self, api: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(f"/{api}", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def status(self, api: str, job_id: str) -> dict[str, Any]:
        r = self.http.get(f"/{api}/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()["job_status"]  # type: ignore[no-any-return]

    def wait(
        self, api: str, job_id: str, statuses: set[str] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll until the job reaches one of ``statuses`` (default: any terminal one)."""
        want = statuses or TERMINAL
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(api, job_id)
            if status["status"] in want:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"job still {status['status']} after {timeout}s: {status}")
            time.sleep(0.1)

    def wait_for(
        self, api: str, job_id: str, predicate: Any, timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(api, job_id)
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met after {timeout}s: {status}")
            time.sleep(0.1)

    def wait_workers_gone(self, api: str, job_id: str, timeout: float = 20) -> dict[str, Any]:
        """Wait until none of a job's workers is pending, initializing or running."""
        return self.wait_for(
            api,
            job_id,
            lambda s: not any(s["worker_stats"][state] for state in LIVE_WORKER_STATES),
            timeout,
        )

    def logs(self, api: str, job_id: str) -> str:
        return self.http.get(f"/_cortex/apis/{api}/jobs/{job_id}/logs").text

    def results(self, api: str, job_id: str) -> list[dict[str, Any]]:
        text = self.http.get(f"/_cortex/apis/{api}/jobs/{job_id}/results").text
        return [json.loads(line) for line in text.splitlines()]

    def failed(self, api: str, job_id: str) -> list[dict[str, Any]]:
        return self.http.get(f"/_cortex/apis/{api}/jobs/{job_id}/failed").json()["failed_batches"]  # type: ignore[no-any-return]

    def workers(self, api: str, job_id: str) -> list[dict[str, Any]]:
        return self.http.get(f"/_cortex/apis/{api}/jobs/{job_id}/workers").json()["workers"]  # type: ignore[no-any-return]


class InProcessServer:
    """The orchestrator app called in-process (httpx through ASGI): for tests of HTTP shapes
    and validation that run no job (workers could not reach it: it listens on no port)."""

    def __init__(self, home: Path, **settings: Any) -> None:
        from starlette.testclient import TestClient

        from orchestrator.http.app import create_app
        from orchestrator.settings import Settings

        self.home = home
        app = create_app(Settings(home=home, **settings))
        # 127.0.0.1 is a Host the guard answers for; "testserver" is not.
        self.http = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)

    def __enter__(self) -> InProcessServer:
        self.http.__enter__()  # runs the app's lifespan: store, credentials, supervisor
        token = (self.home / "token").read_text().strip()
        self.http.headers["Authorization"] = f"Bearer {token}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.__exit__(*exc)

    def deploy(self, project_dir: Path) -> dict[str, Any]:
        r = self.http.post("/_cortex/apis", json={"project_dir": str(project_dir)})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def running_job(job_id: str, **fields: Any) -> Any:
    """Return the store row of a running job with nothing else about it (store-level tests)."""
    from orchestrator.store.models import Job

    row = {
        "job_id": job_id,
        "api_name": "api",
        "api_id": "a1",
        "api_spec": {},
        "project_dir": "/nowhere",
        "backend": "process",
        "status": JobStatus.RUNNING.value,
        "workers": 2,
        "batch_size": 1,
        "config": {},
        "source": {},
        "created_time": 0.0,
    }
    return Job(**(row | fields))


def items_job(
    items: list[Any], batch_size: int = 1, workers: int = 1, **extra: Any
) -> dict[str, Any]:
    """Return a submission body with an ``item_list`` source."""
    return {"workers": workers, "item_list": {"items": items, "batch_size": batch_size}, **extra}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def make_project(root: Path, name: str, predictor: str, **extra: Any) -> Path:
    """Write a one-API project (cortex.yaml + predictor.py) and return its directory."""
    import yaml

    project = root / name
    project.mkdir(parents=True, exist_ok=True)
    (project / "predictor.py").write_text(predictor)
    api = {
        "name": name,
        "kind": "BatchAPI",
        "predictor": {"type": "python", "path": "predictor.py"},
    }
    for key, value in extra.items():
        api[key] = value
    (project / "cortex.yaml").write_text(yaml.safe_dump([api]))
    return project


#: Contract suites that run on every backend; the other modules' servers run on process.
EVERY_BACKEND = ("test_lifecycle",)
#: The lifecycle tests that run on aws too (under moto): one or more per status an aws job
#: can reach there. The others need files shared with the worker, which a Batch job on
#: moto cannot see, or repeat what these show.
ON_AWS = (
    "test_succeeded_with_exact_counts_times_and_worker_stats",
    "test_completed_with_failures_keeps_a_failed_batch_ledger",
    "test_a_poison_item_is_isolated_and_a_retry_of_it_completes_the_job",
    "test_a_batch_failing_every_attempt_is_tried_retries_plus_one_times",
    "test_enqueue_failed_on_an_invalid_json_line_names_file_and_line",
    "test_delimited_files_batches_cross_file_boundaries_in_order",
    "test_worker_error_after_init_keeps_failing",
    "test_worker_error_on_a_predictor_that_cannot_load_is_fatal_at_once[aws-import-error]",
    "test_worker_error_when_workers_keep_crashing_mid_batch",
    "test_timed_out_job_ends_and_its_workers_stop",
    "test_stopped_job_stays_stopped_and_keeps_its_results",
    "test_a_job_stopped_while_enqueuing_never_starts_a_worker",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the contract suites' tests once per backend."""
    if "backend" in metafunc.fixturenames:
        backends: list[Any] = ["process"]
        if metafunc.module.__name__ in EVERY_BACKEND:
            backends.append(pytest.param("docker", marks=pytest.mark.docker))
            if any(name.split("[")[0] == metafunc.function.__name__ for name in ON_AWS):
                backends.append(pytest.param("aws", marks=pytest.mark.aws))
        if metafunc.module.__name__ == "test_aws_backend":
            backends = [pytest.param("aws", marks=pytest.mark.aws)]
        metafunc.parametrize("backend", backends, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Of a parametrized test in ``ON_AWS`` by id, keep only the named aws cases."""
    named = {name for name in ON_AWS if "[" in name}
    dropped = [
        item
        for item in items
        if "[aws-" in item.name
        and item.name.split("[")[0] in {n.split("[")[0] for n in named}
        and item.name not in named
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a test's server runs on; docker needs the engine (see dockerkit), aws
    a moto server too (see motokit)."""
    if request.param == "aws":
        motokit.require_moto()
    if request.param in ("docker", "aws"):
        dockerkit.require_engine()
        dockerkit.ensure_base_image()
    return str(request.param)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[motokit.MotoServer]:
    """One moto server for the session's aws tests (each test home has its own resources)."""
    motokit.require_moto()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with motokit.running(log) as moto:
        yield moto


def backend_settings(backend: str, tmp_path: Path) -> dict[str, str]:
    """Settings a test server needs for ``backend``.

    Docker workers see the test's directory (markers, attempt counters, listed files) at
    the same path; they run as an unprivileged user, so it is made writable for them.
    """
    if backend != "docker":
        return {}
    tmp_path.chmod(0o777)
    return {"docker_mounts": str(tmp_path)}


@pytest.fixture(scope="session", autouse=True)
def no_containers_left_after_the_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole session, no container of any test home may remain."""
    yield
    if dockerkit.engine_problem() is not None:
        return
    root = tmp_path_factory.getbasetemp().resolve()
    client = dockerkit.client()
    try:
        labelled = client.api.containers(all=True, filters={"label": dockerkit.HOME_LABEL})
    finally:
        client.close()
    left = [
        c["Names"][0]
        for c in labelled
        if Path(c["Labels"][dockerkit.HOME_LABEL]).is_relative_to(root)
    ]
    assert not left, f"containers left behind by the test session: {left}"


@pytest.fixture
def server(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh orchestrator with its own home, torn down with a no-leftovers check."""
    srv = Server(tmp_path / "home", backend=backend, **backend_settings(backend, tmp_path))
    srv.home.mkdir()
    if backend == "aws":
        srv.set_up_aws(request.getfixturevalue("moto_server"))
    srv.start()
    yield srv
    left = srv.cleanup()
    assert not left, f"workers left behind: {left}"


@dataclass
class Run:
    """What a ``cortex-tui`` command run in-process did: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


Cli = Callable[..., Run]


@pytest.fixture
def server_cli(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """Run ``cortex-tui --server <the test server> ARGS`` in-process; stdin is no terminal."""
    from cortex_tui.cli.main import main

    assert server.token is not None
    monkeypatch.setenv("CORTEX_TUI_TOKEN", server.token)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    def run(*args: str) -> Run:
        code = main(["--server", server.url, *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def testbench(server: Server) -> str:
    server.deploy(SAMPLES / "testbench")
    return "testbench"
