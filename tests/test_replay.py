"""``cortex-tui replay``: a batch of a finished job run again in this Python, against a real
orchestrator and the jobs its real workers ran."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, Server, items_job, make_project

PREDICTOR = """
import os

class PythonPredictor:
    def __init__(self, config, job_spec):
        self.tag, self.job_id = config["tag"], job_spec["job_id"]

    def predict(self, payload, batch_id):
        print(f"predicting batch {batch_id}")
        out = []
        for item in payload:
            if item == "poison":
                raise ValueError(f"VERSION poison in batch {batch_id}")
            out.append({"item": item, "tag": self.tag, "env": os.environ.get("GREETING")})
        return out
"""
CORTEX_YAML = """
- name: replayed
  kind: BatchAPI
  predictor:
    type: python
    path: predictor.py
    config: {tag: api}
    env: {GREETING: hello}
"""
ITEMS = ["a", "b", "poison", "c", "d", "e"]  # batches of 2: batch 1 fails, 0 and 2 succeed


@dataclass
class Replayed:
    code: int
    out: str
    err: str


@dataclass
class Setup:
    server: Server
    project: Path
    job_id: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A server that ran one job (config and env in play) of version 1 of an API."""
    root = tmp_path_factory.mktemp("replay")
    server = Server(root / "home")
    server.home.mkdir()
    project = make_project(root, "replayed", PREDICTOR.replace("VERSION", "v1"))
    (project / "cortex.yaml").write_text(CORTEX_YAML)
    try:
        server.start()
        server.deploy(project)
        body = items_job(ITEMS, batch_size=2, config={"tag": "job"})
        job_id = server.submit("replayed", body)["job_id"]
        server.wait("replayed", job_id)
        yield Setup(server, project, job_id)
    finally:
        server.cleanup()


def replay(server: Server, *args: str) -> Replayed:
    """Run ``cortex-tui replay ARGS`` as a user would, in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "cortex_tui", "--server", server.url, "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(server),
        stdin=subprocess.DEVNULL,
    )
    return Replayed(done.returncode, done.stdout, done.stderr)


def _env(server: Server) -> dict[str, str]:
    return {**os.environ, "CORTEX_TUI_HOME": str(server.home), "PYTHONPATH": str(ROOT)}


def from_the_predictor(traceback: str) -> str:
    """Return a traceback from the first frame in the predictor's file to its end."""
    lines = traceback.rstrip("\n").splitlines()
    start = next(i for i, line in enumerate(lines) if "predictor.py" in line)
    return "\n".join(lines[start:])


def test_a_failed_batch_replays_with_the_traceback_its_worker_had(setup: Setup) -> None:
    ledger = setup.server.failed("replayed", setup.job_id)
    assert [entry["batch_index"] for entry in ledger] == [1]

    run = replay(setup.server, "replayed", setup.job_id[:6], "1")

    assert run.code == 1
    assert run.out == ""  # no result; what the predictor printed went to stderr
    assert "predicting batch 1" in run.err
    assert from_the_predictor(ledger[0]["traceback"]) in run.err
    assert run.err.rstrip().endswith("ValueError: v1 poison in batch 1")


def test_a_succeeded_batch_prints_its_result_as_the_job_stored_it(setup: Setup) -> None:
    run = replay(setup.server, "replayed", "latest", "2")

    assert run.code == 0, run.err
    stored = [
        line["result"]
        for line in setup.server.results("replayed", setup.job_id)
        if line["batch_index"] == 2
    ]
    # The job's merged config (the job's tag) and the API's predictor.env, as on the worker.
    assert stored == [
        {"item": "d", "tag": "job", "env": "hello"},
        {"item": "e", "tag": "job", "env": "hello"},
    ]
    assert json.loads(run.out) == stored


def test_item_replays_one_item_of_the_batch_by_its_job_wide_index(setup: Setup) -> None:
    good = replay(setup.server, "replayed", setup.job_id, "1", "--item", "3")
    poison = replay(setup.server, "replayed", setup.job_id, "1", "--item", "2")
    outside = replay(setup.server, "replayed", setup.job_id, "1", "--item", "4")

    assert good.code == 0, good.err
    assert json.loads(good.out) == [{"item": "c", "tag": "job", "env": "hello"}]
    assert poison.code == 1
    assert poison.err.rstrip().endswith("ValueError: v1 poison in batch 1")
    assert outside.code != 0
    assert "--item 4: batch 1 holds items 2 to 3" in outside.err


def test_an_api_redeployed_since_still_replays_the_version_the_job_ran(
    setup: Setup, tmp_path: Path
) -> None:
    (setup.project / "predictor.py").write_text(PREDICTOR.replace("VERSION", "v2"))
    assert setup.server.deploy(setup.project)["apis"][0]["result"] == "updated"

    run = replay(setup.server, "replayed", setup.job_id, "1")

    assert run.code == 1
    assert run.err.rstrip().endswith("ValueError: v1 poison in batch 1")
    assert setup.server.failed("replayed", setup.job_id)[0]["traceback"].endswith(
        "ValueError: v1 poison in batch 1\n"
    )


def test_a_batch_the_job_does_not_have_is_a_clear_error(setup: Setup) -> None:
    run = replay(setup.server, "replayed", setup.job_id, "3")
    unknown = replay(setup.server, "replayed", "f" * 16, "0")
    answer = setup.server.http.get(
        f"/_cortex/apis/replayed/jobs/{setup.job_id}/batches/99999999999999999999/replay"
    )

    assert run.code == 1
    assert f'job {setup.job_id} of api "replayed" has no batch 3: its batches are 0 to 2' in run.err
    assert unknown.code == 1 and "has no job" in unknown.err
    assert answer.status_code == 400 and "batch_index" in answer.json()["error"]


def test_pdb_stops_at_the_exception_and_shows_the_batch(setup: Setup) -> None:
    """Driven through a pseudo-terminal, as a user at a terminal would."""
    command = [sys.executable, "-m", "cortex_tui", "--server", setup.server.url]
    command += ["replay", "replayed", setup.job_id, "1", "--pdb"]
    main, child = pty.openpty()
    process = subprocess.Popen(
        command, stdin=child, stdout=child, stderr=child, env=_env(setup.server), close_fds=True
    )
    os.close(child)
    try:
        seen = _read_until(main, "(Pdb) ")
        assert "ValueError: v1 poison in batch 1" in seen
        os.write(main, b"p payload\n")
        assert "['poison', 'c']" in _read_until(main, "(Pdb) ")
        os.write(main, b"q\n")
        assert process.wait(timeout=30) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)


def _read_until(fd: int, marker: str, timeout: float = 60) -> str:
    """Read a pty until ``marker`` appears; return what was read."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} after {timeout}s; the terminal showed:\n{seen.decode()}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other side closed
                chunk = b""
            assert chunk, f"the replay ended before {marker!r}:\n{seen.decode()}"
            seen += chunk
    return seen.decode(errors="replace")


def test_the_replay_route_answers_no_env_value(setup: Setup) -> None:
    # predictor.env's values reach the replay through a file only this user can read.
    spec = setup.server.http.get(
        f"/_cortex/apis/replayed/jobs/{setup.job_id}/batches/0/replay"
    ).json()

    assert "hello" not in json.dumps(spec)
    assert spec["env_names"] == ["GREETING"]
    env_file = Path(spec["env_file"])
    assert env_file.is_relative_to(setup.server.home)
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(env_file.read_text()) == {"GREETING": "hello"}


def test_the_replay_line_says_how_the_batch_went_in_words() -> None:
    from runtime.replay import describe

    spec = {"batch_index": 0, "job_id": "j", "api_name": "a", "api_id": "v", "project_dir": "/p"}

    assert describe({**spec, "state": "split"}, None).endswith(
        "; on its worker it failed, and isolate_failures split it to find the failing items"
    )
    assert describe({**spec, "state": "failed", "error": "E"}, 3).endswith(
        "batch 0, item 3, of job j (api a version v) from /p; on its worker it failed with E"
    )
