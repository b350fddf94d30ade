"""The thinnest end-to-end path: deploy, submit, succeed, read results back."""

from __future__ import annotations

from conftest import Server


def test_item_list_job_succeeds_with_results_in_item_order(server: Server, testbench: str) -> None:
    job = server.submit(
        testbench, {"workers": 2, "item_list": {"items": list(range(7)), "batch_size": 2}}
    )
    status = server.wait(testbench, job["job_id"])
    assert status["status"] == "status_succeeded"
    assert status["batch_metrics"]["succeeded"] == 4
    assert status["batch_metrics"]["total"] == 4
    assert [r["result"]["item"] for r in server.results(testbench, job["job_id"])] == list(range(7))
