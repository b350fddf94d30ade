"""The CLI's pure functions: times, tables, statuses, progress, views, config pairs."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cortex_tui.cli import failed, get_apis, get_job, get_jobs
from cortex_tui.cli.render import (
    colored,
    format_table,
    paint_status,
    progress_bar,
    short_status,
    truncate,
    use_color,
)
from cortex_tui.cli.timefmt import (
    format_age,
    format_duration,
    format_seconds,
    job_duration,
    local_time,
    parse_time,
)
from cortex_tui.cli.wait import outcome_text, progress_text
from cortex_tui.embedded import loopback_address, resolve_url
from cortex_tui.errors import InputError
from cortex_tui.items import parse_config

T0 = "2026-11-27T14:03:05.000000Z"
EPOCH0 = parse_time(T0) or 0.0


def suggest(*words: str) -> str:
    return " ".join(["cortex-tui", *words])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"), (0, "0s"), (0.4, "<1s"), (5, "5s"), (59.9, "59s"), (60, "1m"),
        (184, "3m 4s"), (3600, "1h"), (3720, "1h 2m"), (3725, "1h 2m"), (90000, "1d 1h"),
    ],
)  # fmt: skip
def test_format_duration_shows_the_two_largest_units(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.0004, "0.40ms"), (0.85, "850ms"), (2.44, "2.4s"), (75, "1m 15s")],
)
def test_format_seconds_suits_a_batch_time(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


def test_ages_and_durations_from_server_timestamps() -> None:
    assert parse_time(T0) == datetime(2026, 11, 27, 14, 3, 5, tzinfo=UTC).timestamp()
    assert format_age(T0, EPOCH0 + 3) == "3s ago"
    assert format_age(T0, EPOCH0 + 330) == "5m ago"
    assert format_age(T0, EPOCH0 + 7300) == "2h ago"
    assert format_age(T0, EPOCH0 - 5) == "just now"
    assert format_age(None, EPOCH0) == "-"
    assert job_duration(T0, "2026-11-27T14:04:17.000000Z", EPOCH0 + 999) == 72
    assert job_duration(T0, None, EPOCH0 + 10) == 10
    assert job_duration(None, None, EPOCH0) is None
    assert local_time(T0) == datetime.fromtimestamp(EPOCH0).strftime("%Y-%m-%d %H:%M:%S")
    assert local_time(None) == "-"
    assert parse_time("not a time") is None


def test_short_status_strips_the_prefix() -> None:
    assert short_status("status_completed_with_failures") == "completed with failures"
    assert short_status("status_succeeded") == "succeeded"
    assert short_status(None) == "-"


def test_progress_bar() -> None:
    assert progress_bar(0, 0) == "[..........]"
    assert progress_bar(12, 30) == "[####......]"
    assert progress_bar(30, 30) == "[##########]"
    assert progress_bar(5, 10, width=4) == "[##..]"


def test_table_aligns_columns_and_color_does_not_skew_them() -> None:
    paint = paint_status("status_worker_error", True)
    table = format_table(
        ("name", "status"),
        [["a", "running"], ["longer-name", "worker error"]],
        [[None, None], [None, paint]],
    )
    assert table.splitlines() == [
        "NAME          STATUS",
        "a             running",
        "longer-name   \x1b[31mworker error\x1b[0m",
    ]


def test_color_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(Terminal())
    assert not use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Terminal())
    assert colored("ok", "green", enabled=False) == "ok"


def test_truncate_keeps_one_line() -> None:
    assert truncate("[1,\n 2]", 20) == "[1, 2]"
    assert truncate("x" * 30, 10) == "xxxxxxx..."


def job(**overrides: Any) -> dict[str, Any]:
    """Return a job_status document like the server's."""
    status: dict[str, Any] = {
        "job_id": "1a2b3c4d5e6f7a8b",
        "api_name": "iris",
        "workers": 2,
        "batch_size": 5,
        "source": {"kind": "item_list", "batch_size": 5, "items": 30},
        "config": {"C": 1.0},
        "retries": 0,
        "status": "status_running",
        "message": None,
        "batches_in_queue": 3,
        "batches_in_flight": 2,
        "batch_metrics": {"succeeded": 1, "failed": 0, "total": 6},
        "worker_stats": dict.fromkeys(get_job.WORKER_STATS, 0) | {"running": 2},
        "created_time": T0,
        "start_time": T0,
    }
    return status | overrides


def test_jobs_view_lists_jobs_and_the_endpoint() -> None:
    document = {
        "endpoint": "http://127.0.0.1:7311/iris",
        "jobs": [
            job(),
            job(job_id="0000000000000001", status="status_completed_with_failures",
                batch_metrics={"succeeded": 5, "failed": 1, "total": 6},
                end_time="2026-11-27T14:04:17.000000Z"),
        ],
    }  # fmt: skip

    lines = get_jobs.render(document, EPOCH0 + 65, color=False).splitlines()

    start = local_time(T0)
    assert lines == [
        "JOB ID             STATUS                    PROGRESS   FAILED   START TIME"
        "            DURATION",
        f"1a2b3c4d5e6f7a8b   running                   1/6        0        {start}   1m 5s",
        f"0000000000000001   completed with failures   6/6        1        {start}   1m 12s",
        "",
        "endpoint: http://127.0.0.1:7311/iris",
    ]  # fmt: skip
    empty = get_jobs.render({"endpoint": "http://x/iris", "jobs": []}, EPOCH0, color=False)
    assert empty == "no submitted jobs\n\nendpoint: http://x/iris"


def test_apis_view_shows_the_latest_job_its_progress_and_last_activity() -> None:
    ended = job(job_id="0000000000000001", status="status_completed_with_failures",
                batch_metrics={"succeeded": 5, "failed": 1, "total": 6},
                end_time="2026-11-27T14:04:17.000000Z")  # fmt: skip
    document = {
        "apis": [
            {"name": "iris", "backend": "process", "running_jobs": 1, "latest_job": job(),
             "updated_time": T0},
            {"name": "done", "backend": "process", "running_jobs": 0, "latest_job": ended,
             "updated_time": T0},
            {"name": "idle", "backend": "docker", "running_jobs": 0, "latest_job": None,
             "updated_time": T0},
        ]
    }  # fmt: skip

    lines = get_apis.render(document, EPOCH0 + 300, False, suggest).splitlines()

    # Progress is finished (succeeded + failed) over total, as in the terminal UI; the last
    # update is the latest job's last activity (now while it runs), else the deploy.
    assert [line.split() for line in lines[1:]] == [
        ["iris", "process", "1", "1a2b3c4d5e6f7a8b", "running", "1/6", "now"],
        ["done", "process", "0", "0000000000000001", "completed", "with", "failures",
         "6/6", "(1", "failed)", "3m", "ago"],
        ["idle", "docker", "0", "-", "-", "-", "5m", "ago"],
    ]  # fmt: skip
    assert get_apis.render({"apis": []}, EPOCH0, False, suggest) == (
        "no apis are deployed (deploy one with: cortex-tui deploy DIR)"
    )


def test_job_view_shows_stats_config_and_where_to_look_next() -> None:
    document = {"job_status": job(
        status="status_completed_with_failures", message="1 of 6 batches failed",
        batch_metrics={"succeeded": 5, "failed": 1, "total": 6, "avg_time_per_batch": 2.5},
        end_time="2026-11-27T14:04:17.000000Z",
    )}  # fmt: skip
    workers = {"workers": [{"worker": "w0", "state": "failed", "exit_code": 1, "error": "boom"}]}

    text = get_job.render(document, workers, EPOCH0, False, suggest)

    assert text.startswith(
        "job id: 1a2b3c4d5e6f7a8b\nstatus: completed with failures (1 of 6 batches failed)\n"
    )
    assert "duration: 1m 12s\n" in text
    assert "IN QUEUE   IN FLIGHT   SUCCEEDED   FAILED   TOTAL   AVG TIME PER BATCH\n" in text
    assert "\n3          2           5           1        6       2.5s\n" in text
    assert "\nw0       failed   1           boom\n" in text
    assert "\njob config\nworkers: 2\nbatch_size: 5\n" in text
    assert "\nconfig:\n  C: 1.0\n" in text
    assert text.endswith(
        "failed batches: cortex-tui failed iris 1a2b3c4d5e6f7a8b\n"
        "retry them: cortex-tui retry iris 1a2b3c4d5e6f7a8b\n"
        "results: cortex-tui results iris 1a2b3c4d5e6f7a8b\n"
        "logs: cortex-tui logs iris 1a2b3c4d5e6f7a8b"
    )


def test_the_watched_job_view_fits_24_lines_with_live_workers_first() -> None:
    states = ["succeeded"] * 20 + ["running"] * 12
    workers = {"workers": [{"worker": f"w{i}", "state": s} for i, s in enumerate(states)]}
    document = {"job_status": job(workers=32)}

    text = get_job.render_watch(document, workers, EPOCH0, False, suggest, lines=22)
    lines = text.splitlines()

    assert len(lines) == 22, text  # 24 rows less the watch header and its blank line
    assert max(len(line) for line in lines) <= 80, text
    assert lines[0] == "job 1a2b3c4d5e6f7a8b   running"
    shown = [line.split()[0] for line in lines if line.startswith("w")]
    assert shown == [f"w{i}" for i in range(20, 29)], text  # the running ones first
    assert "... and 23 more (without --watch: all of them)" in lines
    assert lines[-1] == "logs: cortex-tui logs iris 1a2b3c4d5e6f7a8b"
    assert "job config" not in text


def test_wait_progress_and_outcome_lines() -> None:
    running = job(batch_metrics={"succeeded": 11, "failed": 1, "total": 30},
                  worker_stats={"running": 2, "pending": 0, "initializing": 1})  # fmt: skip
    assert progress_text(running) == (
        "[####......] 12/30 batches, 1 failed, 2 workers running, 1 starting"
    )
    assert progress_text(job(status="status_enqueuing")) == "enqueuing: 6 batches so far"
    done = job(status="status_succeeded", batch_metrics={"succeeded": 6, "failed": 0, "total": 6},
               end_time="2026-11-27T14:03:17.000000Z")  # fmt: skip
    assert outcome_text(done) == "job 1a2b3c4d5e6f7a8b succeeded: 6 of 6 batches in 12s"
    stopped = job(status="status_stopped", message="stopped by request")
    assert outcome_text(stopped) == (
        "job 1a2b3c4d5e6f7a8b ended with status stopped: 1 of 6 batches succeeded, 0 failed"
        " (stopped by request)"
    )


def test_failed_ledger_blocks() -> None:
    batch = {"batch_index": 4, "first_item": 8, "size": 2, "attempts": 3, "worker": "w1",
             "error": "ValueError: bad", "traceback": "Traceback:\n  boom\n",
             "payload": [{"text": "y" * 200}, 9]}  # fmt: skip

    text = failed.render([batch], traceback=True)

    lines = text.splitlines()
    assert lines[:2] == [
        "batch 4 (items 8-9): 3 attempts, last on worker w1",
        "  error: ValueError: bad",
    ]
    assert lines[2].startswith('  payload: [{"text": "yyy') and lines[2].endswith("...")
    assert len(lines[2]) == len("  payload: ") + failed.PAYLOAD_PREVIEW
    assert lines[3:] == ["  traceback:", "    Traceback:", "      boom"]
    assert "traceback" not in failed.render([batch], traceback=False)
    assert failed.render([], traceback=False) == "no failed batches"


def test_config_pairs_parse_json_values_and_nest_dotted_keys() -> None:
    pairs = ["depth=3", "name=big", "flags=[1, 2]", "model.depth=3", "model.kind=x"]
    assert parse_config(pairs) == {
        "depth": 3, "name": "big", "flags": [1, 2], "model": {"depth": 3, "kind": "x"},
    }  # fmt: skip
    assert parse_config(["s=", 'quoted="3"']) == {"s": "", "quoted": "3"}
    assert parse_config(["x=NaN", "y=-Infinity", "z=a{b}"]) == {  # not JSON: strings
        "x": "NaN", "y": "-Infinity", "z": "a{b}",
    }  # fmt: skip
    assert parse_config(["p=[a-z]+", "t={name}: x"]) == {"p": "[a-z]+", "t": "{name}: x"}
    too_much = (["a=1e400"], ["a=" + "[" * 5000])  # JSON no float or parser can hold
    for bad in (["novalue"], ["a..b=1"], ["=1"], ["a=1", "a.b=2"], *too_much):
        with pytest.raises(InputError, match="--config"):
            parse_config(bad)


def test_only_loopback_http_urls_get_an_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    assert loopback_address("http://127.0.0.1:7311") == ("127.0.0.1", 7311)
    assert loopback_address("http://localhost:8000/") == ("127.0.0.1", 8000)
    assert loopback_address("http://127.0.0.2") == ("127.0.0.2", 80)
    for remote in ("https://127.0.0.1:7311", "http://10.0.0.5:7311", "http://0.0.0.0:7311",
                   "http://example.com:7311", "http://127.0.0.1:notaport"):  # fmt: skip
        assert loopback_address(remote) is None, remote
    monkeypatch.delenv("CORTEX_TUI_SERVER", raising=False)
    assert resolve_url(None) == "http://127.0.0.1:7311"
    monkeypatch.setenv("CORTEX_TUI_SERVER", "http://10.0.0.5:7311/")
    assert resolve_url(None) == "http://10.0.0.5:7311"
    assert resolve_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"


def test_watch_cuts_lines_to_the_terminal_by_visible_width() -> None:
    from cortex_tui.cli.watch import fit

    colored_line = "\x1b[31m" + "x" * 100 + "\x1b[0m"
    short_colored = "\x1b[32mok\x1b[0m"

    lines = fit(f"{colored_line}\n{short_colored}\n{'y' * 80}", 80).splitlines()

    assert lines == ["x" * 79 + "…", short_colored, "y" * 80]


def test_a_job_that_isolates_failures_shows_its_items() -> None:
    isolated = job(isolate_failures=True, item_metrics={"succeeded": 62, "failed": 2})

    text = get_job.render({"job_status": isolated}, {"workers": []}, EPOCH0, False, suggest)
    plain = get_job.render({"job_status": job()}, {"workers": []}, EPOCH0, False, suggest)

    assert "\nitems: 62 succeeded, 2 failed (isolate_failures" in text
    assert "\nitems:" not in plain


def test_an_items_file_of_the_other_format_names_the_right_flag(tmp_path: Path) -> None:
    from cortex_tui.errors import InputError
    from cortex_tui.items import read_items, read_jsonl

    (tmp_path / "lines.jsonl").write_text("1\n2\n")
    (tmp_path / "list.json").write_text("[1,\n 2]\n")

    with pytest.raises(InputError, match=r"\(one item per line\? use --jsonl\)$"):
        read_items(tmp_path / "lines.jsonl")
    with pytest.raises(InputError, match=r"\(one JSON list\? use --items\)$"):
        read_jsonl(tmp_path / "list.json")
