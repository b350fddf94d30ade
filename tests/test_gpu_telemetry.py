"""GPU telemetry per worker: sampling, the heartbeat that carries it, the store, the workers
route and the metrics.

No GPU is needed: a stand-in ``nvidia-smi`` (a script written by the test, put first on
the ``PATH`` of the orchestrator and so of its process workers) answers the two queries the
project makes, for two devices. What it cannot show (NVML, real utilisation) is what
``benchmarks/gpu_evidence.py`` shows on a GPU machine.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import sys
import time
from pathlib import Path

import pytest
from conftest import Server, items_job, make_project
from test_metrics import Samples, parse, value
from textual.geometry import Region
from textual.widgets import Static

from cortex_tui.tui.job_screen import JobScreen
from orchestrator.delivery.gpu_reports import parse_gpus
from orchestrator.errors import InvalidRequest
from orchestrator.store.engine import Store
from runtime.gpu_samples import SMI_COMMAND, held, parse_smi
from tests import tui_stub
from tests.tui_stub import Recorded, stub_app

MIB = 1 << 20
SMI_OUTPUT = "0, GPU-aaaa-0000, 37, 1024, 81559\n1, GPU-bbbb-1111, [N/A], 2048, 81559\n"
STAND_IN = f"""#!{sys.executable}
import sys
args = sys.argv[1:]
if args == {list(SMI_COMMAND[1:])!r}:
    print({SMI_OUTPUT!r}, end="")
elif args and args[0] == "--query-gpu=index":
    print("0\\n1")
else:
    sys.exit(f"stand-in nvidia-smi: unexpected arguments {{args}}")
"""
SLOW = """
import time

class PythonPredictor:
    def __init__(self, config, job_spec):
        pass

    def predict(self, payload, batch_id):
        time.sleep(1.5)
        return payload
"""


def test_nvidia_smi_lines_become_samples_in_bytes() -> None:
    text = SMI_OUTPUT + "\nNVIDIA-SMI has failed because it couldn't communicate\n"
    assert parse_smi(text) == [
        {
            "index": 0,
            "uuid": "GPU-aaaa-0000",
            "utilization_pct": 37.0,
            "memory_used_bytes": 1024 * MIB,
            "memory_total_bytes": 81559 * MIB,
        },
        {
            "index": 1,
            "uuid": "GPU-bbbb-1111",
            "utilization_pct": None,
            "memory_used_bytes": 2048 * MIB,
            "memory_total_bytes": 81559 * MIB,
        },
    ]


@pytest.mark.parametrize(
    ("visible", "indices"),
    [(None, [0, 1]), ("", []), ("1", [1]), ("GPU-aaaa", [0]), ("GPU-bbbb-1111,0", [0, 1])],
)
def test_a_worker_keeps_the_devices_cuda_visible_devices_names(
    visible: str | None, indices: list[int]
) -> None:
    assert [s["index"] for s in held(parse_smi(SMI_OUTPUT), visible)] == indices


@pytest.mark.parametrize(
    ("gpus", "message"),
    [
        ("busy", "gpus: must be a list"),
        ([1], "gpus[0]: must be an object"),
        ([{"index": -1, "uuid": "u"}], "gpus[0].index"),
        ([{"index": 0, "uuid": "u", "utilization_pct": 101}], "gpus[0].utilization_pct"),
        ([{"index": 0, "uuid": "u", "memory_used_bytes": 1.5}], "gpus[0].memory_used_bytes"),
        ([{"index": 0, "uuid": "u\r\u2028"}], "gpus[0].uuid"),
        ([{"index": 0, "uuid": "a"}, {"index": 0, "uuid": "b"}], "two samples of one GPU"),
        ([{"index": 0, "uuid": "a"}, {"index": 1, "uuid": "a"}], "two samples of one GPU"),
    ],
)
def test_a_heartbeat_with_malformed_samples_is_refused_naming_the_field(
    gpus: object, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_gpus({"batch_ids": [], "gpus": gpus})


def test_samples_keep_only_the_protocol_fields() -> None:
    sample = {"index": 0, "uuid": "GPU-1", "utilization_pct": 5, "extra": "dropped"}
    assert parse_gpus({"gpus": [sample]}) == [
        {
            "index": 0,
            "uuid": "GPU-1",
            "utilization_pct": 5,
            "memory_used_bytes": None,
            "memory_total_bytes": None,
        }
    ]
    assert parse_gpus({"batch_ids": []}) is None


def test_an_older_database_gets_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "cortex.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE worker (worker_id VARCHAR PRIMARY KEY, job_id VARCHAR, slot INTEGER,"
            " state VARCHAR, handle JSON, created_time FLOAT)"
        )
        conn.execute("INSERT INTO worker VALUES ('j-w0', 'j', 0, 'succeeded', '{}', 0)")
    Store(db).close()
    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(worker)")}
        kept = conn.execute("SELECT worker_id, gpus FROM worker").fetchall()
        batch_columns = {row[1] for row in conn.execute("PRAGMA table_info(batch)")}
    assert {"gpus", "gpus_time"} <= columns
    assert kept == [("j-w0", None)]
    assert "leased_time" in batch_columns


def test_each_worker_reports_its_own_devices_in_the_workers_route_and_metrics(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(STAND_IN)
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CORTEX_TUI_GPUS": "0,1"}
    server = Server(tmp_path / "home", env=env)
    server.home.mkdir()
    server.start()
    try:
        server.deploy(make_project(tmp_path, "gpu-api", SLOW, compute={"gpu": 1}))
        job_id = server.submit("gpu-api", items_job(list(range(6)), workers=2))["job_id"]
        samples = _scrape_until_both_workers_report(server)
        server.wait("gpu-api", job_id)
        workers = {w["slot"]: w for w in server.workers("gpu-api", job_id)}
    finally:
        assert not server.cleanup()
    # Slot 0 was handed device 0 (CUDA_VISIBLE_DEVICES=0), slot 1 device 1.
    assert [g["uuid"] for g in workers[0]["gpus"]] == ["GPU-aaaa-0000"]
    assert [g["uuid"] for g in workers[1]["gpus"]] == ["GPU-bbbb-1111"]
    assert workers[0]["gpus"][0]["memory_used_bytes"] == 1024 * MIB
    assert workers[0]["gpus_time"] is not None
    w0 = {"api": "gpu-api", "job": job_id, "worker": workers[0]["worker"]}
    w1 = {"api": "gpu-api", "job": job_id, "worker": workers[1]["worker"]}
    device0, device1 = {"gpu": "0", "uuid": "GPU-aaaa-0000"}, {"gpu": "1", "uuid": "GPU-bbbb-1111"}
    assert value(samples, "cortex_tui_worker_gpu_utilization_ratio", **w0, **device0) == 0.37
    assert value(samples, "cortex_tui_worker_gpu_memory_used_bytes", **w1, **device1) == 2 << 30
    assert value(samples, "cortex_tui_worker_gpu_memory_total_bytes", **w0, **device0) == (
        81559 * MIB
    )
    gauges = [key for key in samples if key[0] == "cortex_tui_worker_gpu_memory_used_bytes"]
    assert len(gauges) == 2  # each worker its own device only
    # Device 1 does not report utilisation ([N/A]): no sample rather than a made-up one.
    utilization = [key for key in samples if key[0] == "cortex_tui_worker_gpu_utilization_ratio"]
    assert len(utilization) == 1


def _scrape_until_both_workers_report(server: Server) -> Samples:
    deadline = time.monotonic() + 30
    while True:
        _, samples = parse(server.http.get("/_cortex/metrics").text)
        reported = [key for key in samples if key[0] == "cortex_tui_worker_gpu_memory_used_bytes"]
        if len(reported) == 2:
            return samples
        assert time.monotonic() < deadline, "no GPU samples from both workers within 30 s"
        time.sleep(0.2)


def test_the_job_view_shows_each_live_workers_gpus_under_its_worker_stats() -> None:
    """Over the TUI's recorded responses, with two live workers' samples served."""
    recorded = Recorded()
    samples = parse_gpus({"gpus": [{**s, "utilization_pct": 37} for s in parse_smi(SMI_OUTPUT)]})
    assert samples is not None
    recorded.workers = [
        {"worker": "w0", "state": "running", "gpus": samples[:1]},
        {"worker": "w1", "state": "running", "gpus": samples[1:]},
        {"worker": "w2", "state": "failed", "gpus": samples},  # ended: not shown
    ]

    async def main() -> str:
        app = stub_app(recorded=recorded)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                app.push_screen(JobScreen(tui_stub.API, tui_stub.RUNNING))
                for _ in range(100):
                    await pilot.pause(0.05)
                    if isinstance(app.screen, JobScreen):
                        text = _rendered(app.screen.query_one("#workers", Static))
                        if "worker GPUs" in text:
                            return text
                raise AssertionError("the job view shows no GPU table")
        finally:
            app.client.close()

    text = asyncio.run(main())
    assert "worker GPUs" in text
    lines = [line for line in text.splitlines() if "GiB" in line]
    assert len(lines) == 2, text
    assert "w0" in lines[0] and "37%" in lines[0] and "1.0/79.6 GiB (1%)" in lines[0]
    assert "w1" in lines[1] and "2.0/79.6 GiB (3%)" in lines[1]


def _rendered(widget: Static) -> str:
    region = Region(0, 0, widget.size.width, widget.size.height)
    return "\n".join(strip.text for strip in widget.render_lines(region))
