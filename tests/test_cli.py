"""The ``cortex-tui`` command line against a real orchestrator and real workers."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, SAMPLES, Cli, Run, Server, free_port

from cortex_tui.cli.main import main


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``cortex-tui ARGS`` in-process; return its exit code, stdout and stderr."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def tui(server: Server, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``cortex-tui --server <the test server> ARGS`` in-process, with its token."""
    assert server.token is not None
    monkeypatch.setenv("CORTEX_TUI_TOKEN", server.token)
    return lambda *args: cli("--server", server.url, *args)


def write_items(path: Path, items: list[object]) -> Path:
    path.write_text(json.dumps(items))
    return path


def job_id_of(output: str) -> str:
    match = re.search(r"submitted job (\w+) to ", output)
    assert match, output
    return match.group(1)


def test_deploy_says_created_then_up_to_date_then_updated(
    server: Server, tmp_path: Path, cli: Cli, tui: Cli
) -> None:
    project = tmp_path / "project"
    shutil.copytree(SAMPLES / "testbench", project)
    assert tui("get", "testbench").err == (
        'error: api "testbench" is not deployed (deploy it with: cortex-tui deploy)\n'
    )

    first = tui("deploy", str(project))
    again = cli("deploy", str(project), "--server", server.url)  # the flag after the command
    (project / "predictor.py").write_text((project / "predictor.py").read_text() + "\n# v2\n")
    changed = tui("deploy", str(project))

    assert (first.code, first.out) == (0, "created testbench\n")
    assert (again.code, again.out) == (0, "testbench is up to date\n")
    assert (changed.code, changed.out) == (0, "updated testbench\n")
    header, row = tui("get").out.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "NAME", "BACKEND", "RUNNING JOBS", "LATEST JOB ID", "LATEST JOB STATUS", "PROGRESS",
        "LAST UPDATE",
    ]  # fmt: skip
    assert row.split()[:6] == ["testbench", "process", "0", "-", "-", "-"]
    assert tui("get", "testbench").out == (
        f"no submitted jobs\n\nendpoint: {server.url}/testbench\n"
    )
    unknown = tui("get", "nope")
    assert (unknown.code, unknown.out) == (1, "")
    assert unknown.err == 'error: api "nope" is not deployed (deploy it with: cortex-tui deploy)\n'


def _read_back_a_succeeded_job(
    tui: Cli, testbench: str, job: str, url: str, out_file: Path
) -> None:
    """Check what get, get -o json, results and logs say of a job of 7 items that succeeded."""
    apis = tui("get").out.splitlines()
    assert apis[1].split()[:6] == ["testbench", "process", "0", job, "succeeded", "4/4"]

    detail = tui("get", testbench, job).out
    assert detail.startswith(f"job id: {job}\nstatus: succeeded\n")
    assert (
        "\nworker stats\nPENDING   INITIALIZING   RUNNING   SUCCEEDED   FAILED   STALLED\n"
        in detail
    )
    assert re.search(r"\nbatch stats\nIN QUEUE .*\n0 +0 +4 +0 +4 ", detail)
    assert "failed batches:" not in detail
    assert f"\nresults: cortex-tui --server {url} results testbench {job}\n" in detail

    raw = json.loads(tui("get", testbench, job, "-o", "json").out)
    assert raw["job_status"]["status"] == "status_succeeded"
    assert {"batch_metrics", "worker_stats", "batches_in_queue", "start_time"} <= raw[
        "job_status"
    ].keys()

    written = tui("results", testbench, job, "-o", str(out_file))
    assert (written.code, written.err) == (0, f"wrote 7 results to {out_file}\n")
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [(r["item_index"], r["result"]["item"]) for r in lines] == [(i, i) for i in range(7)]

    logs = tui("logs", testbench, job).out.splitlines()
    assert any(" [w0] " in line for line in logs)
    assert any(" [orchestrator] " in line for line in logs)
    w1_only = tui("logs", testbench, job, "--worker", "w1").out.splitlines()
    assert w1_only and all(" [w1] " in line for line in w1_only)


def test_jobs_from_submit_to_status_results_logs_and_failures(
    server: Server, testbench: str, tmp_path: Path, tui: Cli
) -> None:
    items = write_items(tmp_path / "items.json", list(range(7)))
    url = server.url

    ok = tui("submit", testbench, "--items", str(items),
             "--batch-size", "2", "--workers", "2", "--wait")  # fmt: skip

    assert ok.code == 0, ok.err
    job = job_id_of(ok.out)
    submitted, outcome, results_hint = ok.out.splitlines()
    assert submitted == f"submitted job {job} to testbench (4 batches, 2 workers)"
    assert re.fullmatch(rf"job {job} succeeded: 4 of 4 batches in \S+", outcome)
    assert results_hint == f"results: cortex-tui --server {url} results testbench {job}"

    _read_back_a_succeeded_job(tui, testbench, job, url, tmp_path / "results.jsonl")

    not_running = tui("delete", testbench, job)
    assert (not_running.code, not_running.out) == (1, "")
    assert not_running.err == (
        f"error: job {job} already ended with status_succeeded; there is nothing to stop\n"
    )

    failing = tui("submit", testbench, "--items", str(items), "--batch-size", "2",
                  "--config", "fail_items=[3]", "--wait")  # fmt: skip
    assert failing.code == 1
    bad_job = job_id_of(failing.out)
    assert f"job {bad_job} ended with status completed with failures: 3 of 4" in failing.out
    assert f"failed batches: cortex-tui --server {url} failed testbench {bad_job}" in failing.out
    ledger = tui("failed", testbench, bad_job, "--traceback").out
    assert ledger.startswith("batch 1 (items 2-3): 1 attempt, last on worker w0\n")
    assert "\n  error: ValueError: item 3 is in fail_items\n  payload: [2, 3]\n" in ledger
    assert "\n    Traceback (most recent call last):\n" in ledger

    jobs = tui("get", testbench).out.splitlines()
    assert [line.split()[:4] for line in jobs[1:3]] == [
        [bad_job, "completed", "with", "failures"],
        [job, "succeeded", "4/4", "0"],
    ]
    assert jobs[-2:] == ["", f"endpoint: {url}/testbench"]


def test_delete_stops_a_running_job_then_deletes_the_api(
    server: Server, testbench: str, tmp_path: Path, tui: Cli
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("1\n2\n\n3\n4\n")
    plan = tui("submit", testbench, "--jsonl", str(items), "--dry-run", "-o", "json",
               "--config", "model.depth=3", "--config", "name=big")  # fmt: skip
    assert json.loads(plan.out)["items"] == 4
    assert json.loads(plan.out)["config"] == {
        "sleep_s": 0, "echo": True, "model": {"depth": 3}, "name": "big",
    }  # fmt: skip

    submitted = tui("submit", testbench, "--jsonl", str(items), "--config", "sleep_s=2")
    job = job_id_of(submitted.out)
    assert f"\nfollow it: cortex-tui --server {server.url} get testbench {job} --watch\n" in (
        submitted.out
    )
    curl = f'curl -H "Authorization: Bearer $(cortex-tui token)" {server.url}/testbench/{job}'
    assert f"\njob status: {curl}\n" in submitted.out
    server.wait_for(testbench, job, lambda s: s["worker_stats"]["running"] > 0, timeout=30)
    stopped = tui("delete", testbench, job)

    assert (stopped.code, stopped.out) == (0, f"stopped job {job}\n")
    assert server.status(testbench, job)["status"] == "status_stopped"
    deleted = tui("delete", testbench, "--yes")
    assert deleted.code == 0
    assert deleted.out.startswith("deleting testbench:\n  Its 1 job (")
    assert deleted.out.endswith("\ndeleted testbench; its 1 job stays readable\n")
    assert tui("get").out == (
        f"no apis are deployed (deploy one with: cortex-tui --server {server.url} deploy DIR)\n"
    )


@pytest.mark.parametrize(
    ("content", "flag", "error"),
    [
        (None, "--items", "{path}: no such file"),
        ("[1, 2", "--items", "{path}: not valid JSON: Expecting ',' delimiter: line 1 column 6"
         " (char 5)"),
        ('{"items": [1]}', "--items", "{path}: expected a JSON list of items, got an object"
         " (for one item per line, use --jsonl)"),
        ("1\n2\n{oops\n", "--jsonl", "{path}: line 3 is not valid JSON: Expecting property name"
         " enclosed in double quotes"),
        ("[]", "--items", "{path}: holds no items; a job needs at least one"),
        ("[1, NaN]", "--items", "{path}: NaN is not valid JSON (JSON has no NaN or Infinity)"),
        ("1\n-Infinity\n", "--jsonl",
         "{path}: line 2: -Infinity is not valid JSON (JSON has no NaN or Infinity)"),
        ("[" * 100_000 + "]" * 100_000, "--items", "{path}: nested too deeply to be read"),
        ("[" + "9" * 5000 + "]", "--items", "{path}: a number has more than 4300 digits"),
    ],
)  # fmt: skip
def test_bad_item_files_fail_before_any_request(
    tmp_path: Path, cli: Cli, content: str | None, flag: str, error: str
) -> None:
    path = tmp_path / "items"
    if content is not None:
        path.write_text(content)

    run = cli("--server", "http://0.0.0.0:9", "submit", "testbench", flag, str(path))

    assert (run.code, run.out, run.err) == (1, "", f"error: {error.format(path=path)}\n")


_NOT_A_NAME = "is not an API name or a job id (those are never empty, '.' or '..', and hold no '/')"


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--server", "notaurl", "get"], 1,
         "--server 'notaurl': not an orchestrator URL; give http://HOST:PORT or"
         " https://HOST:PORT, e.g. http://127.0.0.1:7311"),
        (["--server", "http://127.0.0.1:port", "get"], 1,
         "--server 'http://127.0.0.1:port': not an orchestrator URL; give http://HOST:PORT or"
         " https://HOST:PORT, e.g. http://127.0.0.1:7311"),
        (["submit", "testbench", "--items", "{items}", "--timeout", "nan"], 2,
         "argument --timeout: must be a finite number of seconds above 0, got nan"
         " (see: cortex-tui submit --help)"),
        (["retry", "testbench", "latest", "--timeout", "1e999"], 2,
         "argument --timeout: must be a finite number of seconds above 0, got 1e999"
         " (see: cortex-tui retry --help)"),
    ],
)  # fmt: skip
def test_bad_arguments_fail_with_one_line_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, args: list[str], code: int,
    error: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("CORTEX_TUI_HOME", str(tmp_path / "home"))
    items = tmp_path / "items.json"
    items.write_text("[1]")

    run = cli(*(arg.replace("{items}", str(items)) for arg in args))

    assert (run.code, run.out) == (code, "")
    assert run.err.splitlines()[-1] == f"error: {error}"
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["submit", "../etc", "--items", "{items}"], f"'../etc' {_NOT_A_NAME}"),
        (["get", "testbench", ""], f"'' {_NOT_A_NAME}"),
        (["logs", ".", "latest"], f"'.' {_NOT_A_NAME}"),
    ],
)  # fmt: skip
def test_names_that_could_reach_another_route_and_bad_config_json_are_refused(
    tmp_path: Path, server_cli: Cli, args: list[str], error: str
) -> None:
    items = tmp_path / "items.json"
    items.write_text("[1]")

    run = server_cli(*(arg.replace("{items}", str(items)) for arg in args))

    assert (run.code, run.out, run.err) == (1, "", f"error: {error}\n")


def test_a_config_value_that_looks_like_json_but_is_not_is_a_string_with_a_note(
    tmp_path: Path, server_cli: Cli
) -> None:
    items = tmp_path / "items.json"
    items.write_text("[1]")

    run = server_cli("submit", "testbench", "--items", str(items), "--config", "p=[a-z]+",
                     "--config", "n=1e400", "--dry-run", "-o", "json")  # fmt: skip

    assert run.code == 1  # 1e400: a number no float holds, refused before anything is sent
    assert run.err == (
        "note: --config p=[a-z]+: not JSON (Expecting value: line 1 column 2 (char 1)), so p is"
        " the string '[a-z]+'\n"
        "error: --config n=1e400: the number 1e400 is too large\n"
    )


def test_another_homes_orchestrator_on_the_port_is_named_not_a_token_loop(
    tmp_path: Path, server: Server, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTEX_TUI_HOME", str(tmp_path / "other-home"))
    monkeypatch.setenv("CORTEX_TUI_SERVER", server.url)
    monkeypatch.delenv("CORTEX_TUI_TOKEN", raising=False)

    for command in (["get"], ["token"]):
        run = cli(*command)
        assert (run.code, run.out) == (1, ""), command
        assert run.err.startswith(
            f"error: the orchestrator at {server.url} is not the one of {tmp_path / 'other-home'}"
            " (it refused this home's token): another home's orchestrator listens on that port."
        ), command
    monkeypatch.setenv("CORTEX_TUI_TOKEN", "not-its-token")  # what the token given is told
    run = cli("get")
    assert run.err.rstrip().endswith("(CORTEX_TUI_TOKEN is set, and is not this server's token)")


def test_unreachable_remote_server_is_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("CORTEX_TUI_HOME", str(tmp_path / "home"))
    # 0.0.0.0 is no loopback URL to the CLI, and connecting to it fails at once.
    url = f"http://0.0.0.0:{free_port()}"

    run = cli("--server", url, "get")

    assert (run.code, run.out) == (1, "")
    assert run.err == (
        f"error: no orchestrator answers at {url} (check --server / CORTEX_TUI_SERVER)\n"
    )
    assert not (tmp_path / "home").exists()


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def test_get_starts_the_embedded_server_and_down_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "CORTEX_TUI_SERVER"}
    env["CORTEX_TUI_HOME"] = str(home)
    env["HOME"] = str(tmp_path / "user")  # keeps ~/.cortex-tui out of reach, paths unshortened
    url = f"http://127.0.0.1:{free_port()}"

    def cortex_tui(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cortex_tui", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    started = cortex_tui("--server", url, "get")
    pid = json.loads((home / "server.json").read_text())["pid"]
    try:
        assert started.returncode == 0, started.stderr
        assert started.stderr == (
            f"started the embedded orchestrator at {url} (home {home}, log {home}/server.log;"
            " stop it with: cortex-tui down)\n"
        )
        assert started.stdout.startswith("no apis are deployed")
        assert _pid_alive(pid)

        again = cortex_tui("--server", url, "get")  # already up: nothing is started
        assert (again.returncode, again.stderr) == (0, "")

        watch = subprocess.Popen(
            [sys.executable, "-m", "cortex_tui.cli.main", "--server", url, "get", "--watch"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watch.stdout is not None and watch.stderr is not None
        assert watch.stdout.readline().startswith("no apis are deployed")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
        assert watch.stderr.read() == ""
        watch.stdout.close()
        watch.stderr.close()

        down = cortex_tui("down")
        assert (down.returncode, down.stdout) == (0, f"stopped the orchestrator at {url}\n")
        assert not _pid_alive(pid)
        assert cortex_tui("down").stdout == f"no orchestrator is running for {home}\n"
    finally:
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


class EmbeddedCli:
    """Run ``cortex-tui --server URL ARGS`` in a process of its own, for ``home``, whose
    embedded orchestrator listens on a free loopback port (``url``)."""

    def __init__(self, home: Path) -> None:
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CORTEX_TUI_SERVER", "CORTEX_TUI_TOKEN")
        }
        self.env["CORTEX_TUI_HOME"] = str(home)
        self.url = f"http://127.0.0.1:{free_port()}"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cortex_tui", "--server", self.url, *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip


def test_down_names_running_jobs_and_reading_does_not_start_it_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cortex_tui = EmbeddedCli(home)

    items = write_items(tmp_path / "items.json", list(range(200)))
    try:
        assert cortex_tui("deploy", str(SAMPLES / "testbench")).returncode == 0
        submitted = cortex_tui(
            "submit", "testbench", "--items", str(items), "--config", "sleep_s=0.2"
        )
        job_id = job_id_of(submitted.stdout)

        down = cortex_tui("down")
        assert down.returncode == 0, down.stderr
        assert f"1 job still running (testbench {job_id})" in down.stdout, down.stdout
        assert "cortex-tui down --stop-jobs" in down.stdout
        read = cortex_tui("get", "testbench", job_id)  # says it is down, starts nothing
        assert read.returncode == 1
        assert read.stderr == (
            f"error: the orchestrator of {home} was stopped with cortex-tui down, and this"
            " command does not start it again: start it with cortex-tui up\n"
        )
        assert not (home / "server.json").exists()

        assert cortex_tui("up").returncode == 0  # the job carries on where it was
        stopped = cortex_tui("down", "--stop-jobs")
        assert stopped.stdout.startswith(f"stopped 1 job first: testbench {job_id}\n"), stopped
        assert cortex_tui("up").returncode == 0
        job = json.loads(cortex_tui("get", "testbench", job_id, "-o", "json").stdout)
        status = job["job_status"]
        assert status["status"] == "status_stopped", status
        assert 0 < status["batch_metrics"]["succeeded"] < 200
    finally:
        cortex_tui("down", "--stop-jobs")


def test_serve_runs_the_orchestrator_in_the_foreground(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "cortex_tui", "serve", "--port", str(port), "--set", "tick_s=0.2"],
        cwd=ROOT, env={**os.environ, "CORTEX_TUI_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (home / "server.json").exists():
            if serve.poll() is not None or time.monotonic() > deadline:
                serve.kill()
                _, err = serve.communicate()
                raise AssertionError(f"serve exited {serve.returncode} or stalled: {err}")
            time.sleep(0.1)
        record = json.loads((home / "server.json").read_text())
        assert record["url"] == f"http://127.0.0.1:{port}"
        assert record["pid"] == serve.pid  # the CLI became the server: Ctrl-C reaches it
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(20)
    assert serve.stderr is not None
    err = serve.stderr.read()
    serve.stderr.close()
    assert err.startswith(f"serving the orchestrator at http://127.0.0.1:{port}"), err


def test_serve_on_a_home_whose_orchestrator_runs_is_refused_and_down_still_stops_it(
    tmp_path: Path, server: Server
) -> None:
    assert server.proc is not None
    env = {**os.environ, "CORTEX_TUI_HOME": str(server.home), "HOME": str(tmp_path / "user")}

    def cortex_tui(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cortex_tui", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    serve = cortex_tui("serve", "--port", str(free_port()))

    assert (serve.returncode, serve.stdout) == (1, "")
    assert serve.stderr == (
        f"error: the orchestrator of {server.home} already runs at {server.url} (pid"
        f" {server.proc.pid}): use it, or stop it first with: cortex-tui down\n"
    )
    assert server.http.get("/_cortex/health").json()["pid"] == server.proc.pid
    down = cortex_tui("down")
    assert (down.returncode, down.stdout) == (0, f"stopped the orchestrator at {server.url}\n")
    assert server.proc.poll() is not None


def test_a_start_that_finds_the_home_taken_waits_for_the_orchestrator_starting_there(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cortex_tui = EmbeddedCli(home)
    log = home / "server.log"
    with open(home / "server.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another command's orchestrator does, starting
        up = subprocess.Popen(
            [sys.executable, "-m", "cortex_tui", "--server", cortex_tui.url, "up"],
            cwd=ROOT, env=cortex_tui.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not (log.exists() and "another orchestrator already runs" in log.read_text()):
            assert time.monotonic() < deadline, "up's orchestrator was not refused"
            time.sleep(0.1)
    # That other orchestrator comes up on the URL up was given.
    port = cortex_tui.url.rsplit(":", 1)[1]
    other = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--home", str(home), "--port", port],
        cwd=ROOT, env={**cortex_tui.env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, err = up.communicate(timeout=60)
        assert up.returncode == 0, err
        assert out.startswith(f"the orchestrator is running at {cortex_tui.url}"), out
        assert f"pid {other.pid})" in out, out
    finally:
        cortex_tui("down")
        if other.poll() is None:
            other.kill()
        other.wait()


def test_a_wrong_token_is_refused_and_the_cli_says_which_it_sent(
    server: Server, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTEX_TUI_TOKEN", "not-the-token")
    run = cli("--server", server.url, "get")
    assert run.code == 1
    assert "the token is not this server's" in run.err
    assert run.err.rstrip().endswith("(CORTEX_TUI_TOKEN is set, and is not this server's token)")


def test_up_starts_the_embedded_server_with_settings(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    data.mkdir()
    (data / "items.jsonl").write_text("1\n2\n")
    cortex_tui = EmbeddedCli(home)
    url = cortex_tui.url

    up = cortex_tui("up", "--set", f"source_roots={data}")
    try:
        assert up.returncode == 0, up.stderr
        token = cortex_tui("token")
        assert token.stdout == (home / "token").read_text()
        assert cortex_tui("deploy", str(SAMPLES / "testbench")).returncode == 0
        body = {"delimited_files": {"s3_paths": [str(data)], "batch_size": 1}}
        r = httpx.post(
            f"{url}/testbench?dryRun=true",
            json=body,
            headers={"Authorization": f"Bearer {token.stdout.strip()}"},
        )
        assert r.status_code == 200 and r.json()["items"] == 2, r.text
        again = cortex_tui("up", "--set", "source_roots=/")
        assert "already running, so --set changed nothing" in again.stderr
    finally:
        cortex_tui("down")


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (("deploy", "."), "deploy"),
        (("submit", "api", "--items", "items.json"), "submit"),
        (("delete", "api"), "delete"),
        (("delete", "api", "1a2b"), "delete"),
        (("retry", "api", "latest", "--wait"), "retry"),
        (("aws", "setup"), "aws setup"),
        (("aws", "teardown", "--force"), "aws teardown"),
        (("prune", "--yes"), "prune"),
        (("down", "--stop-jobs"), "down --stop-jobs"),
    ],
)
def test_readonly_refuses_every_change_in_one_line_before_any_request(
    cli: Cli, args: tuple[str, ...], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTEX_TUI_SERVER", "http://127.0.0.1:9")  # nothing may be asked

    refused = cli("--readonly", *args)

    assert (refused.code, refused.out) == (1, "")
    assert refused.err == (
        f"error: --readonly: `cortex-tui {command}` would change what the orchestrator runs;"
        " run it without --readonly\n"
    )


def test_readonly_still_reads_and_dry_runs(tui: Cli, tmp_path: Path) -> None:
    tui("deploy", str(SAMPLES / "testbench"))
    items = write_items(tmp_path / "items.json", [1, 2])

    assert tui("--readonly", "get").code == 0
    dry = tui("--readonly", "submit", "testbench", "--items", str(items), "--dry-run")
    assert dry.code == 0, dry.err


def test_version_says_the_installed_version(cli: Cli) -> None:
    shown = cli("--version")

    assert shown.code == 0
    assert re.fullmatch(r"cortex-tui \d+\.\d+\.\d+\n", shown.out)


def test_deploy_takes_the_cortex_yaml_itself(tui: Cli, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(SAMPLES / "testbench", project)

    deployed = tui("deploy", str(project / "cortex.yaml"))
    both = tui("deploy", str(project / "cortex.yaml"), "--config-file", "other.yaml")

    assert (deployed.code, deployed.out) == (0, "created testbench\n")
    assert both.code == 1
    assert "not both" in both.err


def test_get_watch_ends_with_the_job_and_its_status(tui: Cli, server: Server) -> None:
    tui("deploy", str(SAMPLES / "testbench"))
    body = {"item_list": {"items": [1, 2, 3], "batch_size": 1}, "config": {"sleep_s": 0.3}}
    job_id = server.submit("testbench", body)["job_id"]

    watched = tui("get", "testbench", job_id[:12], "--watch")

    assert watched.code == 0, watched.err
    assert watched.err.endswith("the job ended: status_succeeded\n")
    assert "status: succeeded" in watched.out


def test_submit_wait_after_a_worker_error_points_at_the_logs(
    tui: Cli, server: Server, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "predictor.py").write_text("import not_a_module\n")
    (broken / "cortex.yaml").write_text(
        "- name: broken\n  kind: BatchAPI\n  predictor:\n    type: python\n    path: predictor.py\n"
    )
    tui("deploy", str(broken))
    items = write_items(tmp_path / "items.json", [1])

    waited = tui("submit", "broken", "--items", str(items), "--wait")

    assert waited.code == 1
    job = job_id_of(waited.out)
    assert f"\nlogs: cortex-tui --server {server.url} logs broken {job}\n" in waited.out
    assert "results:" not in waited.out
