"""The TUI's pure parts: bars, throughput and ETA, log parsing, paths, the submit body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Input

from cortex_tui.errors import InputError
from cortex_tui.tui.cells import legend, progress_cell, stacked_bar, status_text
from cortex_tui.tui.log_view import LogView
from cortex_tui.tui.logline import parse_line
from cortex_tui.tui.path_input import PathInput, PathSuggester, complete_path
from cortex_tui.tui.submit_screen import build_body
from cortex_tui.tui.throughput import Throughput


def test_stacked_bar_counts_each_part_and_keeps_a_lone_failure_visible() -> None:
    bar = stacked_bar(5, 1, 1000, 10, in_flight=2)
    assert len(bar.plain) == 10
    styles = [str(span.style) for span in bar.spans]
    assert styles == ["green", "red", "yellow", "grey35"]
    assert bar.plain.count("█") == 3  # one cell each: succeeded, failed, in flight


def test_stacked_bar_of_a_finished_job_is_full() -> None:
    assert stacked_bar(7, 3, 10, 20).plain == "█" * 20
    assert stacked_bar(0, 0, 0, 4).plain == "░░░░"


def test_progress_cell_and_status_text() -> None:
    job = {"batch_metrics": {"succeeded": 3, "failed": 1, "total": 8}}
    assert progress_cell(job, 8).plain.endswith(" 4/8")
    assert status_text("status_completed_with_failures").plain == "completed with failures"
    assert "red" in str(status_text("status_worker_oom").style)


def test_a_legend_breaks_only_between_its_parts() -> None:
    parts = [Text("■ succeeded 1234"), Text("■ failed 12"), Text("10/20 done, 50%")]
    assert legend(parts, 80, gap=2).plain == "■ succeeded 1234  ■ failed 12  10/20 done, 50%"
    assert legend(parts, 30, gap=2).plain == "■ succeeded 1234  ■ failed 12\n10/20 done, 50%"
    assert legend(parts, 10, gap=2).plain.splitlines() == [part.plain for part in parts]


def test_eta_follows_the_recent_rate_not_the_average() -> None:
    rate = Throughput(window_s=60, recent_s=10)
    for second in range(0, 31, 2):  # 1 batch/s for 30 s ...
        rate.add(float(second), second)
    for second in range(32, 61, 2):  # ... then 5 batches/s
        rate.add(float(second), 30 + (second - 30) * 5)
    assert rate.recent_rate() == pytest.approx(5.0)
    assert rate.eta(100) == pytest.approx(20.0)
    series = rate.series(60.0, 30)
    assert series[-1] == pytest.approx(5.0) and series[0] == pytest.approx(1.0)


def test_throughput_without_progress_has_no_eta() -> None:
    rate = Throughput()
    rate.add(0.0, 10)
    assert rate.eta(5) is None
    rate.add(2.0, 10)
    assert rate.eta(5) is None
    assert rate.eta(0) == 0.0


def test_parse_tagged_and_untagged_lines() -> None:
    line = parse_line("2026-11-27T04:43:31.906656Z [w0] [batch 7] batch 7: 2 items", None)
    assert (line.time, line.worker, line.batch, line.message) == (
        "04:43:31.906",
        "w0",
        7,
        "batch 7: 2 items",
    )
    assert line.plain(timestamps=False) == "[w0] [batch 7] batch 7: 2 items"
    follow = parse_line("    raise ValueError(x)", line)
    assert follow.worker == "w0" and follow.message == "    raise ValueError(x)"
    orchestrator = parse_line("2026-11-27T04:43:31.5Z [orchestrator] job status_running", None)
    assert orchestrator.worker == "orchestrator" and orchestrator.batch is None


def test_complete_path(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "items.json").write_text("[]")
    assert complete_path(f"{tmp_path}/pro") == f"{tmp_path}/project/"
    assert complete_path(f"{tmp_path}/it") == f"{tmp_path}/items.json"
    assert complete_path(f"{tmp_path}/it", directories_only=True) is None
    assert complete_path(f"{tmp_path}/nothing") is None


def test_tab_takes_a_completion_of_the_typed_path_never_one_made_for_an_earlier_value(
    tmp_path: Path,
) -> None:
    class Form(App[None]):
        def compose(self) -> ComposeResult:
            yield PathInput(suggester=PathSuggester(), id="path")
            yield Input(id="next")

    async def tab_with(suggestion: str) -> tuple[str, str | None]:
        """Type ``prod.json``, let its own suggestion settle, hold ``suggestion``, press tab."""
        app = Form()
        async with app.run_test() as pilot:
            field = app.query_one(PathInput)
            field.value = f"{tmp_path}/prod.json"
            await pilot.pause()
            field._suggestion = suggestion  # what the suggester had worked out by then
            await pilot.press("tab")
            return field.value, app.focused.id if app.focused else None

    stale = asyncio.run(tab_with(f"{tmp_path}/project/"))  # made when "pro" was typed
    extends = asyncio.run(tab_with(f"{tmp_path}/prod.json.bak"))

    assert stale == (f"{tmp_path}/prod.json", "next")
    assert extends == (f"{tmp_path}/prod.json.bak", "path")


def test_build_body_reads_json_or_jsonl_and_overrides(tmp_path: Path) -> None:
    listed = tmp_path / "items.json"
    listed.write_text(json.dumps([1, 2, 3]))
    lines = tmp_path / "items.txt"
    lines.write_text('{"a": 1}\n{"a": 2}\n')
    body = build_body(
        {"source": str(listed), "batch_size": "2", "workers": "3", "config": "x=1 m.n='a b'"}
    )
    assert body == {
        "workers": 3,
        "item_list": {"items": [1, 2, 3], "batch_size": 2},
        "config": {"x": 1, "m": {"n": "a b"}},
    }
    assert build_body({"source": str(lines), "batch_size": "1", "workers": "1"})["item_list"][
        "items"
    ] == [{"a": 1}, {"a": 2}]
    with pytest.raises(InputError, match="workers"):
        build_body({"source": str(listed), "batch_size": "1", "workers": "0"})
    with pytest.raises(InputError, match="choose the file"):
        build_body({"source": "", "batch_size": "1", "workers": "1"})


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView()


def test_log_view_keeps_every_line_and_search_hides_none() -> None:
    async def scenario() -> None:
        app = LogApp()
        async with app.run_test(size=(80, 10)) as pilot:
            view = app.query_one(LogView)
            tags = {0: " needle"}
            view.append_raw(
                f"2026-11-27T04:43:31.{n:06d}Z [w{n % 3}] line {n}{tags.get(n % 100, '')}"
                for n in range(5000)
            )
            await pilot.pause()
            assert view.shown_count == 5000
            view.pattern = "needle"
            assert len(view.matches) == 50 and view.shown_count == 5000
            assert view.next_match() and view.current_match >= 0
            first = view.current_match
            view.next_match(backwards=True)
            assert view.current_match == (first - 1) % 50
            view.worker = "w1"
            assert view.shown_count == 1667
            view.worker = None
            view.wrap = True
            await pilot.pause()
            assert view.virtual_size.height >= 5000

    asyncio.run(scenario())


def test_the_traceback_view_names_the_items_of_its_batch() -> None:
    from cortex_tui.tui.traceback_screen import batch_items

    assert batch_items(1, 1) == "item 1"
    assert batch_items(8, 4) == "items 8 to 11 (4 items)"
    assert batch_items(None, 4) == "items unknown"


def test_two_saves_at_once_never_share_a_file(tmp_path: Path) -> None:
    from cortex_tui.tui.saved_file import free_path, write_lines

    first, second = free_path(tmp_path, "r.jsonl"), free_path(tmp_path, "r.jsonl")
    write_lines(second, ["b"])
    write_lines(first, ["a", "a"])

    assert (first.name, second.name) == ("r.jsonl", "r-1.jsonl")
    assert (first.read_text(), second.read_text()) == ("a\na\n", "b\n")


def test_a_save_that_fails_leaves_no_file(tmp_path: Path) -> None:
    from cortex_tui.tui.saved_file import free_path, write_lines

    def broken() -> Iterator[str]:
        yield "a"
        raise OSError("disk full")

    path = free_path(tmp_path, "r.jsonl")
    with pytest.raises(OSError):
        write_lines(path, broken())

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("line", "config"),
    [
        ('fail_items=["3"] sleep_s=0.5', {"fail_items": ["3"], "sleep_s": 0.5}),
        ('tags=["a b", "c"]  name=\'two words\'', {"tags": ["a b", "c"], "name": "two words"}),
        ('x={"k": [1, {"y": "z]"}]} q="a\\"b"', {"x": {"k": [1, {"y": "z]"}]}, "q": 'a"b'}),
        ("", {}),
    ],
)
def test_the_submit_forms_config_line_keeps_json_as_the_clis_config_does(
    line: str, config: dict[str, object]
) -> None:
    from cortex_tui.items import parse_config, split_config_line

    assert parse_config(split_config_line(line)) == config


def test_an_open_bracket_or_quote_in_the_config_line_is_an_error() -> None:
    from cortex_tui.items import split_config_line

    for line in ("a=[1, 2", 'a="x'):
        with pytest.raises(InputError, match="left open"):
            split_config_line(line)


def test_the_ledger_has_a_row_for_each_isolated_item_of_one_batch() -> None:
    from cortex_tui.tui.job_screen import _item_span, _ledger_key

    first = {"batch_index": 0, "first_item": 13, "size": 1}
    second = {"batch_index": 0, "first_item": 50, "size": 1}

    assert _ledger_key(first) != _ledger_key(second)
    assert (_item_span(13, 1), _item_span(8, 4), _item_span(None, 4)) == ("13", "8-11", "-")
