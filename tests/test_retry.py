"""Retry only what failed: a new job of a job's failed batches, whose items keep their
indices, merged back into the parent's results; retries of retries; nothing to retry.

Against the real orchestrator and worker processes (process backend), over HTTP and
through the CLI. The testbench predictor fails the batches holding an item of its
``fail_items`` config, so a retry with that config overridden succeeds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from conftest import Cli, Server, items_job

ITEMS = list(range(40))
#: Items 5, 20 and 37 fail batches 2, 10 and 18 of 20 (two items a batch).
POISON = [5, 20, 37]


def failing_job(server: Server, api: str) -> str:
    """Run 20 batches of which 3 fail; return the ended job's id."""
    body = items_job(ITEMS, batch_size=2, workers=2, retries=0, config={"fail_items": POISON})
    job_id: str = server.submit(api, body)["job_id"]
    status = server.wait(api, job_id)
    assert status["status"] == "status_completed_with_failures", status
    assert status["batch_metrics"]["failed"] == 3
    return job_id


def retry(server: Server, api: str, job_id: str, body: dict[str, Any] | None = None) -> Any:
    """POST the retry route (no body when ``body`` is None); return the response."""
    path = f"/_cortex/apis/{api}/jobs/{job_id}/retry"
    return server.http.post(path) if body is None else server.http.post(path, json=body)


def merged(server: Server, api: str, job_id: str) -> list[dict[str, Any]]:
    text = server.http.get(
        f"/_cortex/apis/{api}/jobs/{job_id}/results", params={"merge_retries": "true"}
    ).text
    return [json.loads(line) for line in text.splitlines()]


def test_a_retry_reruns_only_the_failed_batches_and_merges_into_the_parent(
    server: Server, testbench: str
) -> None:
    parent = failing_job(server, testbench)

    answer = retry(server, testbench, parent, {"config": {"fail_items": []}})

    assert answer.status_code == 200, answer.text
    child = answer.json()
    assert child["parent_job_id"] == parent
    assert child["config"] == {"sleep_s": 0, "echo": True, "fail_items": []}
    assert child["workers"] == 2  # the parent's
    status = server.wait(testbench, child["job_id"])
    assert status["status"] == "status_succeeded", status
    assert status["parent_job_id"] == parent
    assert status["batch_metrics"]["total"] == 3
    assert status["batch_size"] == 2
    assert status["source"] == {
        "kind": "retry",
        "parent_job_id": parent,
        "batch_size": 2,
        "batches": 3,
        "items": 6,
    }
    # The retry's own results carry the parent's item indices.
    own = server.results(testbench, child["job_id"])
    assert [r["item_index"] for r in own] == [4, 5, 20, 21, 36, 37]
    assert [r["result"]["item"] for r in own] == [4, 5, 20, 21, 36, 37]

    lines = merged(server, testbench, parent)

    assert [r["item_index"] for r in lines] == ITEMS
    assert [r["result"]["item"] for r in lines] == ITEMS
    assert {r["job_id"] for r in lines if r["item_index"] in (4, 5, 20, 21, 36, 37)} == {
        child["job_id"]
    }
    assert {r["job_id"] for r in lines if r["item_index"] not in (4, 5, 20, 21, 36, 37)} == {parent}
    # Without merge_retries the parent's results are what they were.
    assert len(server.results(testbench, parent)) == 34
    listing = server.http.get(f"/{testbench}").json()["jobs"]
    assert {j["job_id"]: j["parent_job_id"] for j in listing} == {
        child["job_id"]: parent,
        parent: None,
    }


def test_a_retry_of_a_retry_keeps_the_original_indices(server: Server, testbench: str) -> None:
    parent = failing_job(server, testbench)
    first = retry(server, testbench, parent, {"config": {"fail_items": [37]}, "workers": 1})
    assert first.status_code == 200, first.text
    first_id = first.json()["job_id"]
    assert server.wait(testbench, first_id)["batch_metrics"] == {
        **server.status(testbench, first_id)["batch_metrics"],
        "succeeded": 2,
        "failed": 1,
    }
    # Through a prefix of its id, re-split into batches of one item.
    second = retry(
        server, testbench, first_id[:12], {"config": {"fail_items": []}, "batch_size": 1}
    )
    assert second.status_code == 200, second.text
    second_id = second.json()["job_id"]
    status = server.wait(testbench, second_id)
    assert status["status"] == "status_succeeded", status
    assert status["parent_job_id"] == first_id
    assert status["batch_metrics"]["total"] == 2
    assert [r["item_index"] for r in server.results(testbench, second_id)] == [36, 37]

    lines = merged(server, testbench, parent)

    assert [r["item_index"] for r in lines] == ITEMS
    assert [r["result"]["item"] for r in lines] == ITEMS
    assert [r["job_id"] for r in lines[36:]] == [second_id, second_id, parent, parent]
    assert [r["job_id"] for r in lines[4:6]] == [first_id, first_id]
    assert [r["item_index"] for r in merged(server, testbench, first_id)] == [4, 5, 20, 21, 36, 37]


def test_nothing_to_retry_and_bad_requests_are_refused_clearly(
    server: Server, testbench: str
) -> None:
    done = server.submit(testbench, items_job([1, 2, 3]))["job_id"]
    server.wait(testbench, done)

    nothing = retry(server, testbench, done)
    running = server.submit(testbench, items_job([1], config={"sleep_s": 30}))["job_id"]
    busy = retry(server, testbench, "latest")
    unknown = retry(server, testbench, done, {"items": [1]})
    bad_size = retry(server, testbench, done, {"batch_size": 0})
    missing = retry(server, testbench, "f" * 16)
    server.http.delete(f"/{testbench}/{running}")

    assert nothing.status_code == 409
    assert nothing.json()["error"] == f"job {done} has no failed batches: nothing to retry"
    assert busy.status_code == 409
    assert busy.json()["error"].startswith(f"job {running} is still status_")
    assert "wait for it to end" in busy.json()["error"]
    assert unknown.status_code == 400
    assert unknown.json()["error"].startswith('unknown field "items"')
    assert bad_size.status_code == 400
    assert "batch_size" in bad_size.json()["error"]
    assert missing.status_code == 404


def test_a_database_from_before_retries_gains_the_column(tmp_path: Path) -> None:
    from orchestrator.store.engine import Store

    db = tmp_path / "cortex.db"
    Store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX ix_job_parent_job_id")
        conn.execute("ALTER TABLE job DROP COLUMN parent_job_id")
    conn.close()

    Store(db).close()

    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(job)")}
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(job)")}
    conn.close()
    assert "parent_job_id" in columns
    assert "ix_job_parent_job_id" in indexes


def test_the_cli_retries_waits_and_merges_the_results(
    server: Server, testbench: str, server_cli: Cli, tmp_path: Path
) -> None:
    parent = failing_job(server, testbench)
    url = server.url

    retried = server_cli("retry", testbench, parent[:8], "--config", "fail_items=[]", "--wait")

    assert retried.code == 0, retried.err
    first, outcome, results_hint = retried.out.splitlines()
    child = first.split()[2]
    assert first == (
        f"submitted job {child} to {testbench}: a retry of 3 failed batches of job {parent}"
        " (2 workers)"
    )
    assert outcome.startswith(f"job {child} succeeded: 3 of 3 batches")
    assert results_hint == f"results: cortex-tui --server {url} results {testbench} {child}"
    detail = server_cli("get", testbench, child).out
    assert f"\nretry of: {parent}\n" in detail
    retry_hint = f"\nretry them: cortex-tui --server {url} retry {testbench} {parent}\n"
    assert retry_hint in server_cli("get", testbench, parent).out
    assert (
        f"with the retried job's: cortex-tui --server {url} results {testbench} {parent}"
        " --merge-retries" in detail
    )
    out = tmp_path / "merged.jsonl"
    saved = server_cli("results", testbench, parent, "--merge-retries", "-o", str(out))
    assert saved.err == f"wrote 40 results to {out}\n"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["item_index"] for r in lines] == ITEMS
    assert [r["result"]["item"] for r in lines] == ITEMS

    again = server_cli("retry", testbench, child)

    assert again.code == 1
    assert again.err == f"error: job {child} has no failed batches: nothing to retry\n"


async def _retry_in_the_tui(app: Any, api: str, parent: str) -> tuple[str, str]:
    """Press R on the parent's job view (and y); return the screen then shown and the
    confirmation's title (the new job's id, or the view's name when nothing opened)."""
    from textual.widgets import Static

    from cortex_tui.tui.confirm_screen import ConfirmScreen
    from cortex_tui.tui.job_screen import JobScreen
    from tests.tui_stub import until

    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(JobScreen(api, parent))
        await until(pilot, lambda: getattr(app.screen, "job", None) is not None)
        await pilot.press("R")
        if app.readonly:
            await pilot.pause()
            return type(app.screen).__name__, ""
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        title = str(app.screen.query_one("#title", Static).render())
        await pilot.press("y")
        await until(
            pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.job_id != parent
        )
        return str(app.screen.job_id), title


def test_the_tuis_job_view_retries_the_failures_and_opens_the_retry(
    server: Server, testbench: str
) -> None:
    from cortex_tui.client import CortexClient
    from cortex_tui.tui import CortexApp

    parent = failing_job(server, testbench)
    apps = [
        CortexApp(CortexClient(server.url, timeout=10, token=server.token), refresh_s=0.5, **kw)
        for kw in ({}, {"readonly": True})
    ]
    try:
        child, title = asyncio.run(_retry_in_the_tui(apps[0], testbench, parent))
        refused, _ = asyncio.run(_retry_in_the_tui(apps[1], testbench, parent))
    finally:
        for app in apps:
            app.client.close()

    assert title == f"Retry 3 failed batches of job {parent}?"
    assert server.status(testbench, child)["parent_job_id"] == parent
    assert server.wait(testbench, child)["batch_metrics"]["failed"] == 3  # same config: fails again
    assert refused == "JobScreen"
    assert len(server.http.get(f"/{testbench}").json()["jobs"]) == 2  # read-only made none


def test_a_retry_of_an_isolated_job_reruns_only_the_items_that_failed(
    server: Server, testbench: str
) -> None:
    # Two batches of 8; isolation leaves items 3 and 12 failed on their own.
    body = items_job(list(range(16)), batch_size=8, retries=0, config={"fail_items": [3, 12]})
    parent = server.submit(testbench, {**body, "isolate_failures": True})["job_id"]
    assert server.wait(testbench, parent)["item_metrics"] == {"succeeded": 14, "failed": 2}

    child = retry(server, testbench, parent, {"config": {"fail_items": []}})
    assert child.status_code == 200, child.text
    assert child.json()["source"]["items"] == 2
    child_id = child.json()["job_id"]
    status = server.wait(testbench, child_id)

    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["total"] == 2
    assert [r["item_index"] for r in server.results(testbench, child_id)] == [3, 12]
    lines = merged(server, testbench, parent)
    assert [r["item_index"] for r in lines] == list(range(16))
    assert [r["job_id"] for r in lines if r["item_index"] in (3, 12)] == [child_id, child_id]


def test_a_retry_whose_merged_config_passes_the_limit_is_refused(
    server: Server, testbench: str
) -> None:
    # Each config is under max_config_bytes (1 MB); merged, they are not.
    big = "x" * 700_000
    body = items_job([1, 2], config={"fail_items": [2], "a": big})
    parent = server.submit(testbench, body)["job_id"]
    server.wait(testbench, parent)

    refused = retry(server, testbench, parent, {"config": {"b": big}})

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"].startswith("config: merged over the job's, it is 1400"), (
        refused.text
    )
    assert "max_config_bytes" in refused.json()["error"]


def test_a_dry_run_retry_says_what_would_run_and_submits_nothing(
    server: Server, testbench: str
) -> None:
    parent = failing_job(server, testbench)
    jobs_before = len(server.http.get(f"/{testbench}").json()["jobs"])

    dry = server.http.post(f"/_cortex/apis/{testbench}/jobs/{parent}/retry?dryRun=true")

    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    assert (dry.json()["source"]["batches"], dry.json()["source"]["items"]) == (3, 6)
    assert len(server.http.get(f"/{testbench}").json()["jobs"]) == jobs_before


def test_a_job_stopped_while_isolating_retries_the_items_already_found_failing(
    server: Server, testbench: str
) -> None:
    # Item 0 is isolated within seconds; the rest of the search (a second a call) is cut
    # short by the stop, so no batch counts as failed yet: only the item does.
    body = items_job(list(range(8)), batch_size=8, workers=1, retries=0,
                     config={"fail_items": [0], "sleep_s": 1.0})  # fmt: skip
    parent = server.submit(testbench, {**body, "isolate_failures": True})["job_id"]
    server.wait_for(testbench, parent, lambda s: s["item_metrics"]["failed"] == 1, timeout=60)
    server.http.delete(f"/{testbench}/{parent}")
    stopped = server.wait_workers_gone(testbench, parent)
    assert stopped["batch_metrics"]["failed"] == 0, stopped  # the search was cut short

    child = retry(server, testbench, parent, {"config": {"fail_items": []}})

    assert child.status_code == 200, child.text
    assert child.json()["source"]["items"] == 1
    assert server.wait(testbench, child.json()["job_id"])["status"] == "status_succeeded"


def test_the_merged_results_hint_of_a_retry_of_a_retry_names_the_first_job(
    server: Server, testbench: str, server_cli: Cli
) -> None:
    parent = failing_job(server, testbench)
    child = retry(server, testbench, parent).json()["job_id"]  # same config: fails again
    server.wait(testbench, child)

    again = server_cli("retry", testbench, child)

    assert again.code == 0, again.err
    assert (
        f"\nmerged results: cortex-tui --server {server.url} results {testbench} {parent}"
        " --merge-retries\n" in again.out
    ), again.out
    server.wait(testbench, again.out.split()[2])
