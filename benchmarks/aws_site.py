"""Where ``aws_backend.py`` runs: a temporary home, its AWS (moto's or real), its orchestrator.

``Site`` makes the home's resources with ``cortex-tui aws setup`` and deletes them with
``cortex-tui aws teardown --force``, as a user would; on moto it also starts and stops the
moto server (recording every request it serves) and removes any container left of the
home. The orchestrator and the workers load the request-counting plugin
(``apis/aws_bench/aws_requests.py``) through botocore's plugin variable.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "benchmarks" / "apis" / "aws_bench"
#: Loads ``aws_requests`` into every boto3 client of a process that can import it.
PLUGIN = {"BOTOCORE_EXPERIMENTAL__PLUGINS": "count=aws_requests"}
#: Where the plugin writes: a file (a line per request) or ``-`` (standard output, at exit).
COUNTS_ENV = "CORTEX_BENCH_AWS_REQUESTS"
#: The orchestrator's counts, beside its home.
ORCHESTRATOR_COUNTS = "orchestrator-requests.jsonl"
MOTO_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Moto:
    """A ``moto_server`` on a free loopback port, recording every request it serves."""

    def __init__(self, tmp: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.recording, self.log = tmp / "moto-recording.jsonl", tmp / "moto.log"
        self.env = {**MOTO_KEYS, "AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": "us-east-1"}
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ, **MOTO_KEYS,
            "MOTO_DOCKER_NETWORK_MODE": "host",  # a worker container reaches 127.0.0.1
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            "MOTO_RECORDER_FILEPATH": str(self.recording),
        }  # fmt: skip
        server = str(Path(sys.executable).with_name("moto_server"))
        port = self.url.rsplit(":", 1)[1]
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [server, "-H", "127.0.0.1", "-p", port], env=env, stdout=log, stderr=log
            )
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                httpx.post(f"{self.url}/moto-api/recorder/start-recording").raise_for_status()
                return
            time.sleep(0.1)
        raise SystemExit(f"moto_server did not start: {self.log.read_text()[-2000:]}")

    def sqs_requests(self, job_id: str) -> int:
        """Return how many SQS requests naming the job's queues moto has served."""
        text = httpx.get(f"{self.url}/moto-api/recorder/download-recording").text
        count = 0
        for line in text.splitlines():
            entry = json.loads(line)
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            if not str(headers.get("x-amz-target", "")).startswith("AmazonSQS."):
                continue
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode()
            names = json.loads(body or "{}")
            count += job_id in str(names.get("QueueUrl") or names.get("QueueName"))
        return count

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


class Orchestrator:
    """``python -m orchestrator --backend aws`` on the site's home, counting its requests."""

    def __init__(self, home: Path, env: dict[str, str], settings: dict[str, str]) -> None:
        self.home, self.port = home, free_port()
        self.out = home.parent / "orchestrator.out"
        self.command = [
            *(sys.executable, "-m", "orchestrator", "--home", str(home), "--port", str(self.port)),
            *("--backend", "aws"),
            *(arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")),
        ]
        self.env = {
            **os.environ, **env, **PLUGIN,
            COUNTS_ENV: str(home.parent / ORCHESTRATOR_COUNTS),
            "PYTHONPATH": os.pathsep.join((str(ROOT), str(API_DIR))),
        }  # fmt: skip
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=600)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.out, "ab") as out:
            self._proc = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        for _ in range(300):
            if (self.home / "token").exists():
                token = (self.home / "token").read_text().strip()
                self.http.headers["Authorization"] = f"Bearer {token}"
            with contextlib.suppress(httpx.TransportError):
                if self.http.get("/_cortex/health").status_code == 200:
                    return
            if self._proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"orchestrator did not start: {self.output_tail()}")

    def output_tail(self) -> str:
        return self.out.read_text(errors="replace")[-3000:] if self.out.exists() else ""

    def stop(self) -> None:
        """Stop it (SIGTERM; its counts are written already, a line per request)."""
        self.http.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


class Site:
    """A temporary home and the AWS it uses: a moto server of its own, or the real one."""

    def __init__(self, real: bool) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="cortex-aws-bench-"))
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.moto = None if real else Moto(self.tmp)
        self.torn_down = False
        self.images: list[str] = []  # built by this run, removed at the end

    @property
    def env(self) -> dict[str, str]:
        """Return what the CLI and the orchestrator add to the environment (moto's endpoint)."""
        return {} if self.moto is None else self.moto.env

    def start(self) -> None:
        if self.moto is not None:
            self.moto.start()

    def orchestrator(self) -> Orchestrator:
        """Return an orchestrator whose workers count their requests too (not yet started)."""
        worker_env = {**PLUGIN, COUNTS_ENV: "-"}
        settings = {}
        if self.moto is not None:  # local images; moto takes any keys, workers need some
            worker_env.update(MOTO_KEYS)
            settings["aws_image_registry"] = ""
        settings["aws_worker_env"] = ",".join(f"{k}={v}" for k, v in worker_env.items())
        return Orchestrator(self.home, self.env, settings)

    def aws(self, *action: str) -> None:
        """Run ``cortex-tui aws ...`` for the home."""
        done = subprocess.run(
            [sys.executable, "-m", "cortex_tui", "aws", *action],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
            env={**os.environ, **self.env, "CORTEX_TUI_HOME": str(self.home),
                 "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(
                f"cortex-tui aws {' '.join(action)} failed: {done.stdout}{done.stderr}"
            )

    def tear_down(self) -> None:
        """Delete the home's AWS resources; on failure, say how to retry (the home is kept)."""
        try:
            self.aws("teardown", "--force")
            self.torn_down = True
        except SystemExit as e:
            print(e, file=sys.stderr)
            if self.moto is None:
                print(
                    "the home is kept: delete its AWS resources with"
                    f" CORTEX_TUI_HOME={self.home} cortex-tui aws teardown --force",
                    file=sys.stderr,
                )

    def close(self, keep: bool) -> None:
        """Stop moto, remove the home's containers and the images built, delete the folder
        (unless kept)."""
        if self.moto is not None:
            self.moto.stop()
            self._remove_containers()
        if self.images:
            subprocess.run(["docker", "rmi", *self.images], capture_output=True, check=False)
        if keep or (self.moto is None and not self.torn_down):
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _remove_containers(self) -> None:
        """Force-remove containers moto ran for the home's Batch jobs (named after it)."""
        sys.path.insert(0, str(ROOT))
        from orchestrator.aws import home_tag

        found = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"name=ctui-{home_tag(self.home)}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        if found:
            print(f"removing {len(found)} leftover container(s)")
            subprocess.run(["docker", "rm", "-f", *found], capture_output=True, check=False)
