"""A schema-driven fuzz run: schemathesis over the OpenAPI document, against the real server.

Bounded examples per operation and a fixed seed, so the run is reproducible and takes well
under two minutes. The checks: no 5xx, every status code and content type is one the
document lists, and every JSON answer matches the schema the document gives. Path
parameters are pinned to a deployed API, a real job and a real worker, so that the
generated requests reach the handlers instead of stopping at 404s; the worker routes
are fuzzed with that worker's own secret.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES, Server, items_job

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    """A server with testbench deployed and one finished job; yields it, the job and worker."""
    server = Server(tmp_path_factory.mktemp("fuzz") / "home", source_roots="", max_live_workers="4")
    server.home.mkdir()
    server.start()
    server.deploy(SAMPLES / "testbench")
    job_id = server.submit("testbench", items_job([1, 2, 3]))["job_id"]
    server.wait("testbench", job_id)
    yield server, job_id, f"{job_id}-w0"
    server.cleanup()


def schemathesis(
    server: Server, tmp_path: Path, token: str, parameters: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n" + "".join(f'"path.{k}" = "{v}"\n' for k, v in parameters.items())
    )
    assert SCHEMATHESIS is not None, "schemathesis is installed with the dev extra"
    # The document is read with the user's token; the worker routes' runs use another one.
    document = tmp_path / "openapi.json"
    document.write_bytes(server.http.get("/_cortex/openapi.json").raise_for_status().content)
    command = [
        *(SCHEMATHESIS, "--config-file", str(config), "run", str(document)),
        *("--url", server.url),
        *("--header", f"Authorization: Bearer {token}"),
        *("--checks", CHECKS, "--max-examples", "25", "--seed", "20261129"),
        *("--workers", "1", "--phases", "examples,coverage,fuzzing", "--no-color"),
        "--generation-database=none",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)


def test_the_user_routes_hold_to_their_document(
    fuzzed: tuple[Server, str, str], tmp_path: Path
) -> None:
    server, job_id, _ = fuzzed
    assert server.token is not None
    run = schemathesis(
        server,
        tmp_path,
        server.token,
        {"api_name": "testbench", "job_id": job_id},
        *("--exclude-path-regex", "^/_cortex/workers/"),
        *("--exclude-path", "/_cortex/apis/{api_name}"),  # deleting the API ends the run
        *("--exclude-path", "/_cortex/prune"),  # and pruning the job it reads
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1]


def test_the_worker_routes_hold_to_their_document(
    fuzzed: tuple[Server, str, str], tmp_path: Path
) -> None:
    server, _, worker_id = fuzzed
    secret = server.worker_secret(worker_id)
    run = schemathesis(
        server,
        tmp_path,
        secret,
        {"worker_id": worker_id},
        *("--include-path-regex", "^/_cortex/workers/"),
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
