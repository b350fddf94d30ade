"""Every route that takes a job id takes its full id, any unique prefix of it, or ``latest``.

One real orchestrator (process backend) runs two small jobs of the testbench API; each route
is then asked about the newer one by prefix and by ``latest``, and must answer as it does for
the full id.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import SAMPLES, Server, items_job

API = "testbench"


@pytest.fixture(scope="module")
def two_jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    """A server with two ended testbench jobs; yield it with the older and the newer id."""
    home = tmp_path_factory.mktemp("ids") / "home"
    home.mkdir()
    srv = Server(home).start()
    try:
        srv.deploy(SAMPLES / API)
        older = srv.submit(API, items_job([1, 2]))["job_id"]
        newer = srv.submit(API, items_job([3]))["job_id"]
        for job_id in (older, newer):
            assert srv.wait(API, job_id)["status"] == "status_succeeded"
            srv.wait_workers_gone(API, job_id)  # answers compared below stay the same
        yield srv, older, newer
    finally:
        left = srv.cleanup()
        assert not left, f"workers left behind: {left}"


def shared_prefix(a: str, b: str) -> str:
    """Return the longest prefix two different job ids share."""
    return a[: next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)]


# Each route that names a job, and the status it answers for the newer (ended) job.
ROUTES = [
    pytest.param("GET", "/testbench/{id}", 200, id="status"),
    pytest.param("DELETE", "/testbench/{id}", 409, id="stop-an-ended-job"),
    pytest.param("GET", "/_cortex/apis/testbench/jobs/{id}/logs", 200, id="logs"),
    pytest.param("GET", "/_cortex/apis/testbench/jobs/{id}/results", 200, id="results"),
    pytest.param("GET", "/_cortex/apis/testbench/jobs/{id}/failed", 200, id="failed"),
    pytest.param("GET", "/_cortex/apis/testbench/jobs/{id}/workers", 200, id="workers"),
    pytest.param("POST", "/_cortex/apis/testbench/jobs/{id}/retry", 409, id="retry-no-failures"),
    pytest.param("GET", "/_cortex/apis/testbench/jobs/{id}/batches/0/replay", 200, id="replay"),
    pytest.param("GET", "/_cortex/queues/{id}", 200, id="queue"),
]


@pytest.mark.parametrize("method", ["prefix", "latest"])
@pytest.mark.parametrize(("verb", "route", "code"), ROUTES)
def test_a_route_takes_a_prefix_or_latest_as_it_takes_the_full_id(
    two_jobs: tuple[Server, str, str], method: str, verb: str, route: str, code: int
) -> None:
    srv, older, newer = two_jobs
    short = newer[: len(shared_prefix(older, newer)) + 1] if method == "prefix" else "latest"
    assert len(short) < len(newer) and not older.startswith(short)

    full = srv.http.request(verb, route.format(id=newer))
    named = srv.http.request(verb, route.format(id=short))

    assert full.status_code == code, full.text
    assert named.status_code == code, named.text
    assert named.text == full.text


def test_the_queue_route_refuses_an_ambiguous_prefix_listing_the_jobs(
    two_jobs: tuple[Server, str, str],
) -> None:
    srv, older, newer = two_jobs
    shared = shared_prefix(older, newer)

    answer = srv.http.get(f"/_cortex/queues/{shared}")

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert f'job id "{shared}" is ambiguous' in error
    assert older in error and newer in error


@pytest.mark.parametrize("job_id", ["fffffff", "nothing"])
def test_the_queue_route_says_when_no_job_has_the_id(
    two_jobs: tuple[Server, str, str], job_id: str
) -> None:
    answer = two_jobs[0].http.get(f"/_cortex/queues/{job_id}")

    assert answer.status_code == 404
    assert answer.json() == {"error": f'no queue for job "{job_id}"'}
