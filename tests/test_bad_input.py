"""Bad requests, row by row: each gets the right status code and a message naming the problem.

One orchestrator serves the whole module: nothing here starts a job. A predictor that raises
in ``__init__``, in ``predict`` or in ``on_job_complete`` is a job outcome, not a bad request:
see test_lifecycle.py (test_worker_error_after_init_keeps_failing,
test_completed_with_failures_keeps_a_failed_batch_ledger,
test_on_job_complete_failure_completes_the_job_with_failures, and
test_worker_error_on_a_predictor_that_cannot_load_is_fatal_at_once).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, InProcessServer, make_project

MAX_BODY = 10 * 1024 * 1024
MAX_ITEM = 256 * 1024
PREDICTOR = "class PythonPredictor:\n    def predict(self, payload):\n        return payload\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """One in-process orchestrator with the testbench API deployed: nothing here runs a job,
    so the app is called directly (httpx through ASGI), without a port or a subprocess."""
    with InProcessServer(tmp_path_factory.mktemp("home")) as server:
        server.deploy(SAMPLES / "testbench")
        yield server


def body_of_size(size: int) -> bytes:
    """Return a JSON object of exactly ``size`` bytes."""
    prefix, suffix = b'{"pad": "', b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


def items(*values: Any, batch_size: int = 1) -> dict[str, Any]:
    return {"item_list": {"items": list(values), "batch_size": batch_size}}


JOB = "0123456789abcdef"  # a well-formed job id that no job has
NO_JOB = f'api "testbench" has no job "{JOB}"'


def bad(method: str, path: str, body: Any, code: int, *texts: str, id: str) -> Any:
    """Return one row: the request (a JSON body, or bytes sent as they are) and the answer."""
    return pytest.param(method, path, body, code, list(texts), id=id)


def submit(body: Any, code: int, *texts: str, id: str) -> Any:
    """Return a row submitting ``body`` to the testbench API."""
    return bad("POST", "/testbench", body, code, *texts, id=id)


# fmt: off
REQUESTS = [
    submit(b'{"workers": 1,', 400, "not valid JSON", id="malformed-json"),
    submit(b"", 400, "body is empty", id="empty-body"),
    submit(b"  \n", 400, "body is empty", id="blank-body"),
    submit([1, 2], 400, "must be a JSON object", "a list", id="body-not-an-object"),
    submit({"workers": 1}, 400,
           "no source", "item_list", "delimited_files", "file_path_lister", id="no-source"),
    submit({**items(1), "file_path_lister": {"s3_paths": ["/tmp"], "batch_size": 1}}, 400,
           "2 sources", "item_list, file_path_lister", id="two-sources"),
    submit(items(1, batch_size=0), 400,
           "item_list.batch_size", "integer >= 1", "got 0", id="batch-size-0"),
    submit({"item_list": {"items": [1]}}, 400,
           "item_list.batch_size: missing", id="batch-size-missing"),
    submit({"item_list": {"items": [], "batch_size": 1}}, 400,
           "item_list.items", "non-empty list", id="no-items"),
    submit({**items(1), "workers": 0}, 400, "workers", "between 1 and", "got 0", id="workers-0"),
    submit({**items(1), "workers": "2"}, 400,
           "workers: must be an integer", "a string", id="workers-a-string"),
    submit({**items(1), "worker": 2}, 400,
           'unknown field "worker"', 'did you mean "workers"?', id="unknown-field"),
    submit({"item_list": {"items": [1], "batchsize": 1}}, 400,
           'item_list: unknown key "batchsize"', 'did you mean "batch_size"?',
           id="unknown-source-key"),
    submit({**items(1), "config": [1]}, 400,
           "config: must be a JSON object", "a list", id="config-a-list"),
    submit({**items(1), "config": "x"}, 400,
           "config: must be a JSON object", "a string", id="config-a-string"),
    submit({**items(1), "timeout": -1}, 400, "timeout", "> 0", "-1", id="negative-timeout"),
    submit(items("a", "x" * (MAX_ITEM - 1)), 400,
           "item_list.items[1]", f"{MAX_ITEM + 1} bytes", f"{MAX_ITEM}-byte limit",
           id="item-over-256KB"),
    submit(body_of_size(MAX_BODY + 1), 413,
           f"{MAX_BODY}-byte limit", "delimited_files", id="body-over-10MB"),
    submit(body_of_size(MAX_BODY), 400, 'unknown field "pad"', id="body-of-exactly-10MB-is-read"),
    bad("POST", "/testbench?dryRun=true", {"workers": 1}, 400,
        "no source", id="dry-run-validates-too"),
    bad("POST", "/testbench?dryRun=maybe", items(1), 400, "dryRun", id="dry-run-not-a-boolean"),
    bad("GET", "/testbench?limit=0", None, 400, "limit", id="list-limit-0"),
    bad("GET", f"/_cortex/apis/testbench/jobs/{JOB}/failed?limit=9223372036854775808", None,
        400, "limit", id="failed-limit-beyond-int64"),
    bad("POST", "/nope", items(1), 404, 'api "nope" is not deployed', id="submit-unknown-api"),
    bad("POST", "/testbnch", items(1), 404, 'api "testbnch" is not deployed (did you mean'
        ' "testbench"?)', id="submit-api-typo"),
    bad("GET", "/nope", None, 404, 'api "nope" is not deployed', id="list-unknown-api"),
    bad("GET", f"/nope/{JOB}", None, 404, 'api "nope" is not deployed', id="job-of-unknown-api"),
    bad("GET", f"/testbench/{JOB}", None, 404, NO_JOB, id="unknown-job"),
    bad("DELETE", f"/testbench/{JOB}", None, 404, NO_JOB, id="stop-unknown-job"),
    bad("GET", f"/_cortex/apis/testbench/jobs/{JOB}/logs", None, 404, NO_JOB,
        id="logs-of-unknown-job"),
    bad("GET", f"/_cortex/apis/testbench/jobs/{JOB}/results", None, 404, NO_JOB,
        id="results-of-unknown-job"),
    bad("POST", "/_cortex/apis", {"project": "/tmp"}, 400, "project_dir",
        id="deploy-without-project-dir"),
    bad("POST", "/_cortex/apis", {"project_dir": "/nonexistent/project"}, 400,
        "/nonexistent/project", "no such directory", id="deploy-missing-dir"),
]
# fmt: on


@pytest.mark.parametrize(("method", "path", "body", "code", "texts"), REQUESTS)
def test_bad_request_is_refused_naming_the_problem(
    srv: InProcessServer, method: str, path: str, body: Any, code: int, texts: list[str]
) -> None:
    if isinstance(body, bytes):
        response = srv.http.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    else:
        response = srv.http.request(method, path, json=body)

    assert response.status_code == code, response.text
    error = response.json()["error"]
    for text in texts:
        assert text in error
    assert srv.http.get("/testbench").json()["jobs"] == []


def test_a_chunked_body_over_10MB_is_refused_too(srv: InProcessServer) -> None:
    def chunks() -> Iterator[bytes]:  # no content-length: the limit is counted as it streams
        payload = body_of_size(MAX_BODY + 1)
        for start in range(0, len(payload), 1 << 20):
            yield payload[start : start + (1 << 20)]

    response = srv.http.post(
        "/testbench", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert f"{MAX_BODY}-byte limit" in response.json()["error"]


def test_unknown_route_and_method_are_json_errors_like_every_other(srv: InProcessServer) -> None:
    wrong_method = srv.http.put("/testbench")
    no_route = srv.http.get(f"/testbench/{JOB}/extra")

    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "PUT /testbench: Method Not Allowed"}
    assert "POST" in wrong_method.headers["allow"]
    assert no_route.status_code == 404
    assert no_route.json() == {"error": f"no route GET /testbench/{JOB}/extra{LISTED}"}


LISTED = ": GET /_cortex/openapi.json lists every route"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize(
    "path", ["/_cortex/nothing", "/_cortex", "/_cortex/", "/_cortex/apis/testbench/nothing"]
)
def test_an_unknown_management_route_is_named_not_taken_for_an_api(
    srv: InProcessServer, method: str, path: str
) -> None:
    answer = srv.http.request(method, path)

    assert answer.status_code == 404
    assert answer.json() == {"error": f"no route {method} {path}{LISTED}"}


def test_a_known_management_route_still_says_which_methods_it_takes(
    srv: InProcessServer,
) -> None:
    answer = srv.http.put("/_cortex/health")

    assert answer.status_code == 405
    assert answer.json() == {"error": "PUT /_cortex/health: Method Not Allowed"}
    assert answer.headers["allow"] == "GET"


# --- deploy: bad cortex.yaml ------------------------------------------------------------


def _yaml(text: str) -> Callable[[Path], Path]:
    """Return a builder of a project whose cortex.yaml is ``text``."""

    def build(root: Path) -> Path:
        project = make_project(root, "api", PREDICTOR)
        (project / "cortex.yaml").write_text(text)
        return project

    return build


def _without_cortex_yaml(root: Path) -> Path:
    project = make_project(root, "api", PREDICTOR)
    (project / "cortex.yaml").unlink()
    return project


API = "- name: {name}\n  kind: BatchAPI\n  predictor:\n    path: {path}\n"
DEPLOYS = [
    pytest.param(
        _yaml(API.format(name="good", path="predictor.py") + "  computee:\n    cpu: 1\n"),
        ['cortex.yaml: api "good"', 'unknown key "computee"', 'did you mean "compute"?'],
        id="unknown-api-key",
    ),
    pytest.param(
        _yaml(API.format(name="good", path="predictor.py") + "    confg: {a: 1}\n"),
        ['cortex.yaml: api "good"', 'predictor: unknown key "confg"', 'did you mean "config"?'],
        id="unknown-predictor-key",
    ),
    pytest.param(
        _yaml(API.format(name="My_Api", path="predictor.py")),
        ["cortex.yaml: api #1", 'name "My_Api" is invalid', "DNS-1123"],
        id="invalid-name",
    ),
    pytest.param(
        _yaml(API.format(name="good", path="missing.py")),
        ['cortex.yaml: api "good"', "predictor.path", '"missing.py" does not exist'],
        id="missing-predictor-file",
    ),
    pytest.param(
        _yaml(
            API.format(name="good", path="predictor.py")
            + "  compute:\n    cpu: 99999999999999999999999\n"
        ),
        ['cortex.yaml: api "good": compute.cpu: must be at most 4096 cores'],
        id="cpu-more-than-any-machine-has",
    ),
    pytest.param(
        _yaml("- name: good\n  kind: [\n"),
        ["cortex.yaml", "invalid YAML at line"],
        id="invalid-yaml",
    ),
    pytest.param(_without_cortex_yaml, ["cortex.yaml", "file not found"], id="no-cortex-yaml"),
]


@pytest.mark.parametrize(("build", "texts"), DEPLOYS)
def test_bad_deploy_is_refused_naming_file_and_key(
    srv: InProcessServer, tmp_path: Path, build: Callable[[Path], Path], texts: list[str]
) -> None:
    project = build(tmp_path)

    response = srv.http.post("/_cortex/apis", json={"project_dir": str(project)})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    for text in texts:
        assert text in error
    names = [api["name"] for api in srv.http.get("/_cortex/apis").json()["apis"]]
    assert names == ["testbench"]


def test_an_s3_source_without_boto3_names_the_extra_to_install(
    srv: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 is the aws extra: an orchestrator installed without it answers what to install.
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now fails
    body = {"delimited_files": {"s3_paths": ["s3://some-bucket/data/"], "batch_size": 1}}

    response = srv.http.post("/testbench", json=body)

    assert response.status_code == 400, response.text
    assert "pip install 'cortex-tui[aws]'" in response.json()["error"], response.text


@pytest.mark.docker
@pytest.mark.parametrize(
    ("compute", "texts"),
    [
        pytest.param(
            {"cpu": 4096},
            [
                "compute.cpu: each worker of this API asks for 4096 CPUs",
                "the Docker engine has only",
            ],
            id="cpu-4096",
        ),
        pytest.param(
            {"mem": 1},
            ["compute.mem: each worker of this API asks for 1 byte", "at least 6Mi"],
            id="mem-1",
        ),
        pytest.param(
            {"mem": "1Mi"},
            ["compute.mem: each worker of this API asks for 1Mi", "at least 6Mi"],
            id="mem-1Mi",
        ),
        pytest.param(
            {"cpu": 0.001},
            ["compute.cpu: each worker of this API asks for 0.001 CPUs", "at least 0.01"],
            id="cpu-0.001",
        ),
        pytest.param(
            {"cpu": "9m"},
            ["compute.cpu: each worker of this API asks for 0.009 CPUs", "at least 0.01"],
            id="cpu-9m",
        ),
    ],
)
def test_a_docker_job_asking_for_what_the_engine_cannot_give_is_refused_at_submit(
    tmp_path: Path, compute: dict[str, Any], texts: list[str]
) -> None:
    # The engine would refuse each worker's container: more CPUs than it has (it cannot even
    # read a cpu past 2**63 nanocores), memory under 6 MiB ("Minimum memory limit allowed is
    # 6MB"), a CFS quota under 1 ms (runc's "invalid argument"). The submission is refused
    # instead, before any worker is tried.
    import dockerkit

    dockerkit.require_engine()
    project = make_project(tmp_path, "asks", PREDICTOR, compute=compute)
    with InProcessServer(tmp_path / "home") as server:
        server.deploy(project)  # on the process backend, which bounds none of these

        response = server.http.post("/asks", json={**items(1), "backend": "docker"})
        jobs = server.http.get("/asks").json()["jobs"]

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith(texts[0]), error
    for text in texts[1:]:
        assert text in error
    assert "deploy again" in error
    assert jobs == []


@pytest.mark.docker
def test_a_docker_job_at_the_engines_minimums_passes_the_submit_check(tmp_path: Path) -> None:
    # 10m is a CFS quota of exactly 1 ms per 100 ms period; 6Mi is docker's own minimum.
    import dockerkit

    from orchestrator.backends.docker.backend import DockerBackend
    from orchestrator.settings import Settings

    dockerkit.require_engine()
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    backend = DockerBackend(settings)
    try:
        backend.check_job({"name": "least", "compute": {"cpu": 0.01, "mem": 6 * 2**20}})
    finally:
        backend.close()
