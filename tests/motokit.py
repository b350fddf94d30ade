"""A real moto server for the aws tests: AWS's APIs over HTTP on a loopback port.

moto runs each AWS Batch job as a real container on the local Docker engine; with
``MOTO_DOCKER_NETWORK_MODE=host`` a container reaches the moto server on 127.0.0.1. Under
``CI=true`` a missing engine or moto fails the aws tests; elsewhere they are skipped with
the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dockerkit
import pytest

REGION = "us-east-1"
#: moto accepts any keys; these are the ones its documentation uses.
DUMMY_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def moto_problem(*, docker: bool = True) -> str | None:
    """Return why the moto server cannot run here, or None.

    Args:
        docker: Whether the tests need the Docker engine too (AWS Batch jobs do; S3 does not).
    """
    if _moto_server_command() is None:
        return "moto_server is not installed (pip install 'moto[server]')"
    return dockerkit.engine_problem() if docker else None


def require_moto(*, docker: bool = True) -> None:
    """Fail (under CI=true) or skip the test when moto (or the engine it needs) is missing."""
    problem = moto_problem(docker=docker)
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {problem}: aws tests must run in CI", pytrace=False)
    pytest.skip(f"{problem} (aws tests skip outside CI)")


def _moto_server_command() -> list[str] | None:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    return [found] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """One ``moto_server`` subprocess on a free loopback port."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """Return the environment a client (or an orchestrator) uses to reach this server."""
        return {
            **DUMMY_KEYS,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def start(self) -> None:
        """Start the server and wait until it answers."""
        command = _moto_server_command()
        assert command is not None
        env = {
            **os.environ,
            **DUMMY_KEYS,
            "MOTO_DOCKER_NETWORK_MODE": "host",
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",  # AWSBatchServiceRole and the like
        }
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [*command, "-H", "127.0.0.1", "-p", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise RuntimeError("moto_server did not start in 30s")

    def client(self, service: str) -> Any:
        """Return a boto3 client of this server."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=DUMMY_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_KEYS["AWS_SECRET_ACCESS_KEY"],
        )

    def stop(self) -> None:
        """Stop the server."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@contextlib.contextmanager
def running(log_path: Path) -> Iterator[MotoServer]:
    """Run a moto server for the duration of the block."""
    server = MotoServer(log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def home_prefix(home: Path) -> str:
    """Return the prefix of every AWS name of an orchestrator home (``ctui-<tag>``)."""
    from orchestrator.aws import home_tag

    return f"ctui-{home_tag(home)}"


def home_leftovers(moto: MotoServer, home: Path) -> dict[str, list[str]]:
    """Return what of a home still exists: active Batch jobs, SQS queues, job containers."""
    prefix = home_prefix(home)
    batch, sqs = moto.client("batch"), moto.client("sqs")
    jobs = []
    queues = [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]]
    for queue in queues:
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
            listed = batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
            jobs += [j["jobName"] for j in listed if j["jobName"].startswith(prefix)]
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return {"batch_jobs": jobs, "queues": urls, "containers": home_containers(home)}


def home_containers(home: Path) -> list[str]:
    """Return the names of containers moto runs for a home's Batch jobs."""
    client = dockerkit.client()
    try:
        found = client.api.containers(all=True, filters={"name": home_prefix(home)})
    finally:
        client.close()
    return [c["Names"][0].lstrip("/") for c in found]


def remove_home_containers(home: Path) -> list[str]:
    """Force-remove the containers of a home's Batch jobs (moto killed mid-job leaves them)."""
    names = home_containers(home)
    client = dockerkit.client()
    try:
        for name in names:
            with contextlib.suppress(Exception):
                client.api.remove_container(name, force=True)
    finally:
        client.close()
    return names


class Relay:
    """A TCP relay to the moto server that can be cut, as a network outage cuts AWS off:
    while cut, nothing listens on its port and the connections it carried are closed."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def mend(self) -> None:
        """Listen (again) and relay every connection to the moto server."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and close every connection carried."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            carried, self._open = self._open, set()
        for sock in carried:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with self._lock:
            self._open -= {source, sink}
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
