"""Every attack found on the open server, replayed: each one now fails and changes nothing.

The server here runs as root, as it did when the attacks worked; one test attacks it as
another local user (uid 65534). Job sources are confined to the API's project directory
(no test-wide ``source_roots``), so the file attacks meet the default rules.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SAMPLES, Server, items_job, make_project

from orchestrator.auth import Credentials
from orchestrator.files import opened_exactly
from orchestrator.http.server import HOME_IN_USE_EXIT
from orchestrator.settings import default_live_workers

ECHO_ENV = textwrap.dedent(
    """
    import os

    class PythonPredictor:
        def predict(self, payload):
            return [{"env": dict(os.environ), "uid": os.getuid()} for _ in payload]
    """
)
SLOW = textwrap.dedent(
    """
    import time

    class PythonPredictor:
        def predict(self, payload):
            time.sleep(0.5)
            return payload
    """
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One orchestrator, confined as a fresh installation is (no extra source roots)."""
    server = Server(
        tmp_path_factory.mktemp("sec") / "home",
        env={"SERVER_SECRET": "s3cr3t-of-the-server"},
        source_roots="",
    )
    server.home.mkdir()
    server.start()
    server.deploy(SAMPLES / "testbench")
    yield server
    left = server.cleanup()
    assert not left, f"workers left behind: {left}"


def anonymous(server: Server, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, headers=headers)


# --- 1. a token on every route -------------------------------------------------------------

ROUTES = [
    ("GET", "/_cortex/health"),
    ("GET", "/_cortex/apis"),
    ("POST", "/_cortex/apis"),
    ("DELETE", "/_cortex/apis/testbench"),
    ("GET", "/_cortex/builds"),
    ("GET", "/_cortex/openapi.json"),
    ("GET", "/_cortex/docs"),
    ("GET", "/testbench"),
    ("POST", "/testbench"),
    ("GET", "/testbench/0123456789abcdef"),
    ("DELETE", "/testbench/0123456789abcdef"),
    ("GET", "/_cortex/apis/testbench/jobs/0123456789abcdef/logs"),
    ("GET", "/_cortex/apis/testbench/jobs/0123456789abcdef/results"),
    ("GET", "/_cortex/apis/testbench/jobs/0123456789abcdef/failed"),
    ("GET", "/_cortex/queues/0123456789abcdef"),
    ("GET", "/no-such-route/at/all"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("token", [None, "wrong", "Basic"])
def test_every_route_wants_the_token(
    srv: Server, method: str, path: str, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if token == "Basic":  # another scheme, with the right token
        headers = {"Authorization": f"Basic {srv.token}"}
    with anonymous(srv, **headers) as http:
        r = http.request(method, path, json={"project_dir": "/tmp"} if method == "POST" else None)
    assert r.status_code == 401, r.text
    assert "cortex-tui token" in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_the_token_and_home_are_the_users_alone(srv: Server) -> None:
    home = srv.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    token = home / "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) >= 40
    for path in [home / "cortex.db", home / "worker.key", *home.joinpath("apis").rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert not mode & 0o077 or path.is_symlink(), f"{path} is mode {oct(mode)}"


def test_the_cli_prints_the_token_and_nothing_else(srv: Server) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cortex_tui", "token"],
        env={**os.environ, "CORTEX_TUI_HOME": str(srv.home)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{srv.token}\n"


ATTACK_AS_NOBODY = """
import json, os, sys, tempfile, httpx
url, home = sys.argv[1], sys.argv[2]
seen = {}
try:
    open(os.path.join(home, "token")).read()
    seen["token_readable"] = True
except OSError:
    seen["token_readable"] = False
project = tempfile.mkdtemp()
open(os.path.join(project, "cortex.yaml"), "w").write(
    "- name: pwn\\n  kind: BatchAPI\\n  predictor: {type: python, path: p.py}\\n")
open(os.path.join(project, "p.py"), "w").write(
    "import os\\nclass PythonPredictor:\\n"
    "  def predict(self, payload):\\n    return [os.getuid()]\\n")
os.chmod(project, 0o755)
for name in ("cortex.yaml", "p.py"):
    os.chmod(os.path.join(project, name), 0o644)
for headers in ({}, {"Authorization": "Bearer guess"}):
    r = httpx.post(url + "/_cortex/apis", json={"project_dir": project}, headers=headers)
    seen.setdefault("deploy", []).append(r.status_code)
r = httpx.post(url + "/pwn", json={"item_list": {"items": [1], "batch_size": 1}})
seen["submit"] = r.status_code
print(json.dumps(seen))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_another_local_user_cannot_deploy_or_read_the_token(srv: Server) -> None:
    out = subprocess.run(
        [
            *("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
            *(sys.executable, "-c", ATTACK_AS_NOBODY, srv.url, str(srv.home)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": "/tmp"},
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen == {"token_readable": False, "deploy": [401, 401], "submit": 401}
    assert "pwn" not in json.dumps(srv.http.get("/_cortex/apis").json())


# --- 2. what a web page can send -----------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_must_be_json(srv: Server, content_type: str | None) -> None:
    body = json.dumps(items_job([1])).encode()
    headers = {"Authorization": f"Bearer {srv.token}"}
    if content_type:
        headers["Content-Type"] = content_type
    with anonymous(srv, **headers) as http:
        r = http.post("/testbench", content=body)
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["error"]
    assert srv.http.get("/testbench").json()["jobs"] == []


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7311", "127.0.0.1.nip.io"])
def test_a_host_the_server_does_not_answer_for_is_refused(srv: Server, host: str) -> None:
    r = srv.http.get("/testbench", headers={"Host": host})
    assert r.status_code == 400, r.text
    assert "Host" in r.json()["error"] and "--allowed-host" in r.json()["error"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]:7311", "LOCALHOST:1"])
def test_loopback_host_names_are_answered(srv: Server, host: str) -> None:
    assert srv.http.get("/testbench", headers={"Host": host}).status_code == 200


def test_allowed_hosts_extend_the_names(tmp_path: Path) -> None:
    server = Server(tmp_path / "home", allowed_hosts="batch.internal")
    server.home.mkdir()
    server.start()
    try:
        assert server.http.get("/_cortex/apis", headers={"Host": "batch.internal"}).is_success
        assert server.http.get("/_cortex/apis", headers={"Host": "other"}).status_code == 400
    finally:
        server.cleanup()


def test_binding_beyond_loopback_warns(tmp_path: Path) -> None:
    server = Server(tmp_path / "home")
    server.home.mkdir()
    command = [sys.executable, "-m", "orchestrator", "--home", str(server.home)]
    command += ["--host", "0.0.0.0", "--port", str(server.port)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    with proc.stdout:
        try:
            first = proc.stdout.readline().decode()
            assert "beyond loopback" in first and "plain HTTP" in first and "token" in first
        finally:
            proc.terminate()
            proc.wait(10)


# --- 3. files stay inside their roots ------------------------------------------------------


def deploy(server: Server, project: Path, **extra: Any) -> httpx.Response:
    return server.http.post("/_cortex/apis", json={"project_dir": str(project), **extra})


def test_config_file_outside_the_project_is_refused_without_quoting_it(
    srv: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "cfg", SLOW)
    for config_file in ("/etc/passwd", "../../../../etc/passwd", "/etc/hostname"):
        r = deploy(srv, project, config_file=config_file)
        assert r.status_code == 400, r.text
        assert "outside the project" in r.json()["error"]
        assert "root:" not in r.text
    # A file inside the project that is not YAML of APIs: named, and not quoted.
    shutil.copy("/etc/passwd", project / "passwd.yaml")
    r = deploy(srv, project, config_file="passwd.yaml")
    assert r.status_code == 400
    assert "root:" not in r.text and "passwd.yaml" in r.json()["error"]


def test_a_symlink_leaving_the_project_is_refused_and_nothing_is_left(
    srv: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "leaky", SLOW)
    (project / "leak.txt").symlink_to("/etc/passwd")
    before = sorted(p.name for p in srv.home.joinpath("apis").iterdir())
    r = deploy(srv, project)
    assert r.status_code == 400, r.text
    assert "leak.txt" in r.json()["error"] and "outside the project" in r.json()["error"]
    assert sorted(p.name for p in srv.home.joinpath("apis").iterdir()) == before


def test_a_symlink_loop_is_a_400_and_nothing_is_left(srv: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, "loopy", SLOW)
    (project / "a").symlink_to(project / "b")
    (project / "b").symlink_to(project / "a")
    before = sorted(p.name for p in srv.home.joinpath("apis").iterdir())
    r = deploy(srv, project)
    assert r.status_code == 400, r.text
    assert "loop" in r.json()["error"]
    assert sorted(p.name for p in srv.home.joinpath("apis").iterdir()) == before


def test_links_inside_the_project_are_copied_as_links(srv: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, "linked", SLOW)
    (project / "data").mkdir()
    (project / "data" / "x.txt").write_text("x")
    (project / "alias.txt").symlink_to(project / "data" / "x.txt")
    (project / "up").symlink_to(project)  # a link to the project itself is not walked
    r = deploy(srv, project)
    assert r.status_code == 200, r.text
    snapshot = srv.home / "apis" / "linked" / r.json()["apis"][0]["api_id"]
    assert (snapshot / "alias.txt").is_symlink() and (snapshot / "alias.txt").read_text() == "x"
    assert (snapshot / "up").resolve() == snapshot.resolve()


def test_a_project_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    server = Server(tmp_path / "home", max_project_bytes="10000")
    server.home.mkdir()
    server.start()
    try:
        project = make_project(tmp_path, "big", SLOW)
        (project / "weights.bin").write_bytes(b"\0" * 20000)
        r = deploy(server, project)
        assert r.status_code == 400
        assert "max_project_bytes" in r.json()["error"]
        assert not any(server.home.joinpath("apis").iterdir())
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private JSON-lines file outside any project, like the one that leaked."""
    folder = tmp_path_factory.mktemp("outside")
    secret = folder / "secret.jsonl"
    secret.write_text('{"card": "4111"}\n')
    secret.chmod(0o600)
    return secret


@pytest.fixture(scope="module")
def confined(srv: Server, tmp_path_factory: pytest.TempPathFactory, outside: Path) -> str:
    """An API whose project holds a link to a folder outside it."""
    project = make_project(tmp_path_factory.mktemp("proj"), "confined", SLOW)
    (project / "inside.jsonl").write_text("1\n2\n")
    srv.deploy(project)
    # Made after the deploy: the snapshot refuses such links, the source dir may still hold one.
    (project / "elsewhere").symlink_to(outside.parent)
    return "confined"


def source_paths(outside: Path, project_dir: str) -> list[str]:
    relative = os.path.relpath(outside, project_dir)
    return [
        str(outside),
        relative,
        f"file://{project_dir}/%2e%2e/%2e%2e/{relative.replace('../', '', 2)}",
        "elsewhere/secret.jsonl",
        "elsewhere",
        "/root",
        "/etc",
    ]


@pytest.mark.parametrize("kind", ["delimited_files", "file_path_lister"])
def test_job_sources_outside_the_roots_are_refused(
    srv: Server, confined: str, outside: Path, kind: str
) -> None:
    project_dir = next(
        a["project_dir"]
        for a in srv.http.get("/_cortex/apis").json()["apis"]
        if a["name"] == confined
    )
    for path in source_paths(outside, project_dir):
        body = {kind: {"s3_paths": [path], "batch_size": 1, "includes": ["**/shadow*", "**"]}}
        r = srv.http.post(f"/{confined}", json=body)
        assert r.status_code == 400, (path, r.text)
        assert "source_roots" in r.json()["error"], (path, r.text)
    assert srv.http.get(f"/{confined}").json()["jobs"] == []


def test_sources_inside_the_project_still_work(srv: Server, confined: str) -> None:
    body = {"delimited_files": {"s3_paths": ["inside.jsonl"], "batch_size": 1}}
    job = srv.submit(confined, body)
    assert srv.wait(confined, job["job_id"])["status"] == "status_succeeded"


def test_source_roots_let_the_operator_open_a_folder(tmp_path: Path, outside: Path) -> None:
    server = Server(tmp_path / "home", source_roots=str(outside.parent))
    server.home.mkdir()
    server.start()
    try:
        server.deploy(make_project(tmp_path, "reader", SLOW))
        body = {"delimited_files": {"s3_paths": [str(outside)], "batch_size": 1}}
        r = server.http.post("/reader?dryRun=true", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == 1
    finally:
        server.cleanup()


# --- 4. forged workers ---------------------------------------------------------------------


def as_worker(
    server: Server, worker_id: str, path: str, body: Any, secret: str | None
) -> httpx.Response:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    with anonymous(server, **headers) as http:
        return http.post(f"/_cortex/workers/{worker_id}/{path}", json=body)


@pytest.fixture(scope="module")
def slow_api(srv: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    srv.deploy(make_project(tmp_path_factory.mktemp("slow"), "slow", SLOW))
    return "slow"


def test_forged_worker_calls_are_refused_and_change_nothing(srv: Server, slow_api: str) -> None:
    # 30 half-second batches: the queue still holds some when the forger asks for one, even
    # on a loaded machine where the checks below take seconds.
    job = srv.submit(slow_api, items_job(list(range(30)), workers=2))
    job_id = job["job_id"]
    srv.wait_for(slow_api, job_id, lambda s: s["worker_stats"]["running"] == 2)
    w0, w1 = f"{job_id}-w0", f"{job_id}-w1"
    user = srv.token
    assert user is not None
    for secret, code in ((None, 401), (user, 403), ("guess", 403), (srv.worker_secret(w1), 403)):
        assert as_worker(srv, w0, "next", {"want": 1}, secret).status_code == code
        failed = {"state": "failed", "reason": "load_error", "error": "forged"}
        assert as_worker(srv, w0, "state", failed, secret).status_code == code
        assert as_worker(srv, w0, "spec", {}, secret).status_code in (code, 405)
    # With its own secret, worker 1 still cannot ack a batch leased to worker 0 ...
    leased = as_worker(srv, w0, "next", {"want": 1}, srv.worker_secret(w0)).json()
    assert leased["task"] == "batches", leased
    batch = leased["batches"][0]
    forged_ack = {"batch_id": batch["batch_id"], "lease": batch["lease"], "result": "FORGED"}
    r = as_worker(srv, w1, "next", {"acks": [forged_ack], "want": 0}, srv.worker_secret(w1))
    assert r.status_code == 403 and "never leased to worker w1" in r.json()["error"]
    # ... nor invent a lease token, nor release it.
    invented = {"batch_id": batch["batch_id"], "lease": "0" * 32, "result": "FORGED"}
    r = as_worker(srv, w0, "next", {"acks": [invented], "want": 0}, srv.worker_secret(w0))
    assert r.status_code == 403
    release = {"release": [{"batch_id": batch["batch_id"], "lease": "x"}], "stopping": True}
    assert as_worker(srv, w0, "next", release, srv.worker_secret(w0)).status_code == 403
    # The stolen lease expires back to the queue; the job ends with real results only.
    status = srv.wait(slow_api, job_id, timeout=90)
    assert status["status"] == "status_succeeded", status
    results = srv.results(slow_api, job_id)
    assert sorted(r["result"] for r in results) == list(range(30))
    assert "FORGED" not in json.dumps(results)


def test_worker_secrets_appear_nowhere(srv: Server, slow_api: str) -> None:
    job = srv.submit(slow_api, items_job([1, 2], workers=2))
    srv.wait(slow_api, job["job_id"])
    secrets = [srv.worker_secret(f"{job['job_id']}-w{n}") for n in range(2)]
    seen = json.dumps(srv.status(slow_api, job["job_id"]))
    seen += json.dumps(srv.workers(slow_api, job["job_id"]))
    seen += srv.logs(slow_api, job["job_id"]) + (srv.home / "server-test.log").read_text()
    assert not any(secret in seen for secret in secrets)


# --- 5. hostile input ----------------------------------------------------------------------

DEEP = "[" * 10_000 + "]" * 10_000
HOSTILE = [
    (
        b'{"workers": 1, "item_list": {"items": [' + DEEP.encode() + b'], "batch_size": 1}}',
        "deeper",
    ),
    (b'{"item_list": {"items": [1' + b"0" * 5000 + b'], "batch_size": 1}}', "digits"),
    (json.dumps(items_job([1]) | {"workers": 10**30}).encode(), "workers"),
    (json.dumps({"item_list": {"items": [1], "batch_size": 10**30}}).encode(), "batch_size"),
    (json.dumps({"item_list": {"items": [1], "batch_size": 2**63}}).encode(), "batch_size"),
    (b'{"item_list": {"items": [1], "batch_size": 1}, "timeout": NaN}', "NaN"),
    (b'{"item_list": {"items": [1], "batch_size": 1}, "timeout": Infinity}', "Infinity"),
    (json.dumps(items_job([1]) | {"timeout": -5}).encode(), "timeout"),
    (json.dumps(items_job([1]) | {"timeout": 1e308}).encode(), "timeout"),
    (
        json.dumps(
            {"file_path_lister": {"s3_paths": ["."], "includes": ["[z-a]"], "batch_size": 1}}
        ).encode(),
        "includes[0]",
    ),
    (json.dumps({"file_path_lister": {"s3_paths": ["a\0b"], "batch_size": 1}}).encode(), "NUL"),
    (
        json.dumps(items_job([1]) | {"config": {"pad": "x" * (1024 * 1024)}}).encode(),
        "max_config_bytes",
    ),
]


def test_hostile_json_is_a_400_and_the_connection_stays_usable(srv: Server) -> None:
    with anonymous(srv, Authorization=f"Bearer {srv.token}") as http:
        for body, named in HOSTILE:
            r = http.post("/testbench", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (named, r.text[:300])
            assert named in r.json()["error"], (named, r.json()["error"])
            assert http.get("/_cortex/health").status_code == 200
        for body in ({"project_dir": "/tmp/a\0b"}, {"project_dir": "/tmp", "config_file": "\0"}):
            r = http.post("/_cortex/apis", json=body)
            assert r.status_code == 400 and "NUL" in r.json()["error"], r.text
    assert srv.http.get("/testbench").json()["jobs"] == []


def test_lists_leave_out_each_jobs_config(srv: Server, slow_api: str) -> None:
    config = {"pad": "y" * 500_000}
    job = srv.submit(slow_api, items_job([1]) | {"config": config})
    srv.wait(slow_api, job["job_id"])
    listed = srv.http.get(f"/{slow_api}").json()["jobs"]
    assert listed and all("config" not in j for j in listed)
    assert "config" not in json.dumps(srv.http.get("/_cortex/apis").json())
    assert srv.status(slow_api, job["job_id"])["config"]["pad"] == config["pad"]


# --- 6. availability -----------------------------------------------------------------------


def test_dropped_log_followers_do_not_starve_other_requests(srv: Server, slow_api: str) -> None:
    job = srv.submit(slow_api, items_job(list(range(200)), workers=1))
    path = f"/_cortex/apis/{slow_api}/jobs/{job['job_id']}/logs?follow=true"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {srv.token}\r\n\r\n"
    ).encode()
    for _ in range(100):
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(request)
            sock.recv(1024)  # the headers are sent; then the client hangs up
    reads = []
    for _ in range(20):
        started = time.monotonic()
        assert srv.http.get(f"/{slow_api}/{job['job_id']}").status_code == 200
        reads.append(time.monotonic() - started)
    assert max(reads) < 2.0, reads  # measured figures: benchmarks/load.py (followers)
    srv.http.delete(f"/{slow_api}/{job['job_id']}")
    srv.wait(slow_api, job["job_id"])


def test_a_job_of_256_workers_starts_no_more_than_the_default_cap(
    srv: Server, slow_api: str
) -> None:
    cap = default_live_workers()
    job = srv.submit(slow_api, items_job(list(range(600)), workers=256))
    status = srv.wait_for(
        slow_api, job["job_id"], lambda s: s["worker_stats"]["running"] >= min(cap, 4), 60
    )
    time.sleep(1)  # a few supervisor ticks: no more workers start
    status = srv.status(slow_api, job["job_id"])
    assert len(srv.workers(slow_api, job["job_id"])) <= cap
    assert status["worker_stats"]["pending"] >= 256 - cap, status["worker_stats"]
    srv.http.delete(f"/{slow_api}/{job['job_id']}")
    srv.wait_workers_gone(slow_api, job["job_id"])


def test_workers_over_the_cap_wait_as_pending(tmp_path: Path) -> None:
    server = Server(tmp_path / "home", max_live_workers="2")
    server.home.mkdir()
    server.start()
    try:
        server.deploy(make_project(tmp_path, "capped", SLOW))
        job = server.submit("capped", items_job(list(range(12)), workers=4))
        status = server.wait_for(
            "capped", job["job_id"], lambda s: s["worker_stats"]["running"] == 2
        )
        assert status["worker_stats"]["pending"] == 2, status["worker_stats"]
        done = server.wait("capped", job["job_id"], timeout=90)
        assert done["status"] == "status_succeeded", done
        assert len(server.workers("capped", job["job_id"])) <= 4
    finally:
        assert not server.cleanup()


# --- 7. secrets in workers -----------------------------------------------------------------


def test_process_workers_start_from_an_allowlisted_environment(srv: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, "envy", ECHO_ENV)
    text = (
        (project / "cortex.yaml")
        .read_text()
        .replace("path: predictor.py", "path: predictor.py\n    env: {API_KEY: k-123}")
    )
    (project / "cortex.yaml").write_text(text)
    srv.deploy(project)
    job = srv.submit("envy", items_job([1]))
    assert srv.wait("envy", job["job_id"])["status"] == "status_succeeded"
    env = srv.results("envy", job["job_id"])[0]["result"]["env"]
    assert "SERVER_SECRET" not in env
    assert "CORTEX_WORKER_SECRET" not in env
    assert set(env) <= {
        *("PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "PYTHONPATH"),
        *("PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES", "CORTEX_WORKER_ID", "CORTEX_JOB_ID"),
        *("CORTEX_API_NAME", "CORTEX_SERVER_UID", "API_KEY"),
        *(k for k in env if k.startswith(("LC_", "CUDA_", "NVIDIA_", "OMP_", "OPENBLAS_", "MKL_"))),
    }, env
    assert env["API_KEY"] == "k-123"
    seen = json.dumps(srv.status("envy", job["job_id"])) + json.dumps(
        srv.workers("envy", job["job_id"])
    )
    seen += srv.logs("envy", job["job_id"]) + json.dumps(srv.http.get("/_cortex/apis").json())
    assert "k-123" not in seen


# --- 8. a damaged home ---------------------------------------------------------------------


def start_on(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--home", str(home), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_a_damaged_database_stops_start_up_with_one_line(tmp_path: Path) -> None:
    server = Server(tmp_path / "home")
    server.home.mkdir()
    server.start()
    server.deploy(SAMPLES / "testbench")
    job = server.submit("testbench", items_job([1]))
    server.wait("testbench", job["job_id"])
    assert not server.cleanup()
    db = server.home / "cortex.db"
    with sqlite3.connect(db) as conn:  # everything into the main file, as a clean stop leaves it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for log in ("cortex.db-wal", "cortex.db-shm"):
        (server.home / log).unlink(missing_ok=True)
    good = db.read_bytes()
    cases = {
        "garbage": b"this is not a database" * 100,
        "truncated": good[: len(good) // 2],
        "empty": b"",
    }
    for name, content in cases.items():
        db.write_bytes(content)
        out = start_on(server.home)
        assert out.returncode != 0, name
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, (name, out.stderr)
        assert str(db) in lines[0] and ("backup" in lines[0]), (name, lines[0])
    db.unlink()
    out = start_on(server.home)
    assert out.returncode != 0 and "is missing" in out.stderr and "backup" in out.stderr


def test_a_second_orchestrator_on_a_running_home_is_refused_and_leaves_it_alone(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "home")
    server.home.mkdir()
    server.start()
    assert server.proc is not None
    try:
        server.deploy(make_project(tmp_path, "patient", SLOW))
        job = server.submit("patient", items_job(list(range(8))))
        record = (server.home / "server.json").read_text()

        second = start_on(server.home)

        assert second.returncode == HOME_IN_USE_EXIT == 75, second.stderr
        assert second.stderr == (
            f"cortex-tui orchestrator: another orchestrator already runs on the home"
            f" {server.home} at {server.url} (pid {server.proc.pid}): use it, or stop it first"
            " (cortex-tui down)\n"
        )
        assert (server.home / "server.json").read_text() == record
        assert server.http.get("/_cortex/health").json()["pid"] == server.proc.pid
        # A killed orchestrator leaves no lock behind, nor do its workers (still running) hold
        # it: it starts again at once, and the job carries on.
        server.wait_for("patient", job["job_id"], lambda s: s["worker_stats"]["running"] >= 1)
        server.kill()
        assert server.worker_pids()
        server.start()
        status = server.wait("patient", job["job_id"], timeout=60)
        assert status["status"] == "status_succeeded", status
    finally:
        assert not server.cleanup()


# --- 9. HTTPS --------------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl to make a certificate")
def test_https_serves_clients_and_workers(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=batch.internal", "-keyout", str(key), "-out", str(cert)),
            *("-addext", "subjectAltName=DNS:batch.internal,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    server = Server(tmp_path / "home", tls_cert=str(cert), tls_key=str(key))
    server.home.mkdir()
    server.url = server.url.replace("http://", "https://")
    trust = ssl.create_default_context(cafile=str(cert))
    server.http = httpx.Client(base_url=server.url, timeout=30, verify=trust)
    server.start()
    try:
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not spoken there
            httpx.get(server.url.replace("https://", "http://") + "/_cortex/health", timeout=5)
        server.deploy(SAMPLES / "testbench")
        job = server.submit("testbench", items_job([1, 2, 3], workers=2))
        # The workers reached the orchestrator over HTTPS, trusting only its certificate.
        assert server.wait("testbench", job["job_id"])["status"] == "status_succeeded"
        assert [r["item_index"] for r in server.results("testbench", job["job_id"])] == [0, 1, 2]
    finally:
        assert not server.cleanup()


# --- 10. a port squatter never gets the token ---------------------------------------------

SQUATTER = """
import http.server, sys
class Steal(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("GOT", self.headers.get("Authorization"), flush=True)
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    do_POST = do_GET
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Steal)
print("LISTENING", flush=True)
server.serve_forever()
"""


@contextlib.contextmanager
def squatting(port: int) -> Iterator[list[str]]:
    """Listen on ``port`` as another local user; yield the lines it heard (filled at exit)."""
    squatter = subprocess.Popen(
        [
            *("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
            *(sys.executable, "-c", SQUATTER, str(port)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert squatter.stdout is not None
    heard: list[str] = []
    try:
        assert squatter.stdout.readline().strip() == "LISTENING"
        yield heard
    finally:
        squatter.terminate()
        out, _ = squatter.communicate(timeout=10)
        heard.extend(out.splitlines())


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_the_cli_does_not_send_the_token_to_another_users_listener(
    srv: Server, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "CORTEX_TUI_TOKEN"}
    with squatting(port) as heard:
        run = subprocess.run(
            [sys.executable, "-m", "cortex_tui", "--server", f"http://127.0.0.1:{port}", "get"],
            env={**env, "CORTEX_TUI_HOME": str(srv.home)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert run.returncode == 1
    assert "belongs to another user (uid 65534)" in run.stderr, run.stderr
    assert srv.token is not None and not any(srv.token in line for line in heard), heard


# --- 11. what a second look found -----------------------------------------------------------

NAN = "class PythonPredictor:\n    def predict(self, payload):\n        return float('nan')\n"


def test_a_nan_result_fails_its_batch_not_the_job(srv: Server, tmp_path: Path) -> None:
    srv.deploy(make_project(tmp_path, "nanny", NAN))
    job = srv.submit("nanny", items_job([1, 2]))
    status = srv.wait("nanny", job["job_id"])
    assert status["status"] == "status_completed_with_failures", status
    [ledger, _] = srv.failed("nanny", job["job_id"])
    assert "JSON cannot carry" in ledger["error"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"item_list": {"items": [1e999], "batch_size": 1}}', "too large for a float"),
        (b'{"item_list": {"items": [1], "batch_size": 1}, "config": {"x": -1e999}}', "float"),
        (b'{"item_list": {"items": ["\\ud800"], "batch_size": 1}}', "surrogate"),
        (b'{"item_list": {"items": [1], "batch_size": 1}, "config": {"\\udfff": 1}}', "surrogate"),
        (b'{"item_list": {"items": [1], "batch_size": 1}, "backend": "\\ud800"}', "surrogate"),
    ],
)
def test_numbers_and_strings_json_cannot_carry_are_refused(
    srv: Server, body: bytes, named: str
) -> None:
    r = srv.http.post("/testbench", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and named in r.json()["error"], r.text


def test_deploy_paths_that_cannot_be_opened_are_400s(srv: Server, tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    project = make_project(tmp_path, "paths", SLOW)
    for body in (
        {"project_dir": "/" + "x" * 5000},
        {"project_dir": "/" + "/".join(["d"] * 3000)},
        {"project_dir": str(loop)},
        {"project_dir": str(project), "config_file": "y" * 5000},
        {"project_dir": str(project), "config_file": ""},
        {"project_dir": str(project), "config_file": 0},
    ):
        r = srv.http.post("/_cortex/apis", json=body)
        assert r.status_code == 400, (str(body)[:80], r.text[:200])


def test_yaml_aliases_are_refused(srv: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, "bomb", SLOW)
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (project / "cortex.yaml").write_text("\n".join(levels) + "\n")
    r = srv.http.post("/_cortex/apis", json={"project_dir": str(project)})
    assert r.status_code == 400 and "aliases" in r.json()["error"], r.text


def test_an_empty_key_file_is_remade_not_trusted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "worker.key").write_text("")
    (home / "token").write_text("short")
    credentials = Credentials(home)
    assert len((home / "worker.key").read_text().strip()) >= 32
    assert credentials.token != "short" and len(credentials.token) >= 32
    empty = hmac.new(b"", b"worker:job-w0", hashlib.sha256).hexdigest()
    assert not credentials.is_worker("job-w0", empty)


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "inside").mkdir()
    listed = tmp_path / "inside" / "data.jsonl"
    listed.write_text("1\n")
    stream = opened_exactly(str(listed))
    assert stream is not None
    with stream:
        assert stream.read() == b"1\n"
    listed.unlink()
    listed.symlink_to("/etc/hostname")
    assert opened_exactly(str(listed)) is None
    # A folder above it swapped for a link is caught too.
    (tmp_path / "inside").rename(tmp_path / "moved")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "data.jsonl").write_text("2\n")
    (tmp_path / "inside").symlink_to(tmp_path / "elsewhere")
    assert opened_exactly(str(listed)) is None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_workers_do_not_send_their_secret_to_a_squatter_while_the_orchestrator_is_down(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "home")
    server.home.mkdir()
    server.start()
    server.deploy(make_project(tmp_path, "patient", SLOW))
    job = server.submit("patient", items_job(list(range(8))))
    server.wait_for("patient", job["job_id"], lambda s: s["batch_metrics"]["succeeded"] >= 1)
    server.kill()  # the worker keeps retrying the orchestrator's port
    with squatting(server.port) as heard:
        time.sleep(3)  # a few of the worker's retries (every 0.1 s, then up to 2 s)
    assert not [line for line in heard if line.startswith("GOT")], heard
    try:
        server.start()  # the worker carries on with the real one
        status = server.wait("patient", job["job_id"], timeout=60)
        assert status["status"] == "status_succeeded", status
    finally:
        assert not server.cleanup()
