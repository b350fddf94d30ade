"""Tests for orchestrator.jobs.sources: parsing a job's source and cutting it into batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SourceError
from orchestrator.jobs.sources import (
    MAX_ITEM_BYTES,
    MAX_LINE_BYTES,
    SOURCE_KINDS,
    Source,
    parse_source,
    source_from_spec,
)


def write_jsonl(path: Path, items: list[Any], *, blank_lines: bool = False) -> Path:
    """Write ``items`` as newline-delimited JSON (optionally with blank lines between)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    separator = "\n\n  \n" if blank_lines else "\n"
    path.write_text(separator.join(json.dumps(item) for item in items) + "\n")
    return path


def make_tree(root: Path) -> None:
    """Create a small directory tree of files, in an order that is not sorted."""
    for name in ["sub/deep/c.jsonl", "sub/skip.jsonl", "notes.txt", "sub/b.jsonl", "a.jsonl"]:
        write_jsonl(root / name, [name])


def all_batches(source: Source) -> list[list[Any]]:
    return list(source.batches())


def error_of(body: dict[str, Any], base_dir: Path | None = None) -> str:
    with pytest.raises(SourceError) as caught:
        parse_source(body, base_dir=base_dir)
    return caught.value.message


# --- item_list ---------------------------------------------------------------------------


def test_item_list_is_cut_into_batches_in_order() -> None:
    source = parse_source(
        {"workers": 2, "config": {"a": 1}, "item_list": {"items": list(range(7)), "batch_size": 3}}
    )

    assert source.kind == "item_list"
    assert all_batches(source) == [[0, 1, 2], [3, 4, 5], [6]]
    assert source.describe() == {"kind": "item_list", "batch_size": 3, "items": 7}
    assert source.dry_run() == {"kind": "item_list", "batch_size": 3, "batches": 3, "items": 7}


def test_a_null_source_counts_as_absent(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [1])
    body = {"item_list": None, "delimited_files": {"paths": [str(tmp_path)], "batch_size": 1}}

    assert parse_source(body).kind == "delimited_files"


def test_item_at_the_size_limit_is_accepted_and_one_byte_more_names_its_index() -> None:
    fits = "x" * (MAX_ITEM_BYTES - 2)  # the JSON quotes make it exactly the limit
    items: list[Any] = [1, "two", {"three": 3}, fits]
    assert parse_source({"item_list": {"items": items, "batch_size": 2}}).describe()["items"] == 4

    items[3] = fits + "x"
    message = error_of({"item_list": {"items": items, "batch_size": 2}})

    assert message == (
        "item_list.items[3]: item is 262145 bytes, larger than the 262144-byte limit for one item"
    )


def test_item_size_is_measured_as_compact_ascii_json() -> None:
    # "é" encodes as the six characters \u00e9, so 45,000 of them are 270,002 bytes.
    items = ["small"] * 1000 + ["é" * 45_000]

    message = error_of({"item_list": {"items": items, "batch_size": 10}})

    assert message.startswith("item_list.items[1000]: item is 270002 bytes")


def test_many_small_items_validate() -> None:
    items = [{"id": i, "text": f"item {i}"} for i in range(100_000)]

    source = parse_source({"item_list": {"items": items, "batch_size": 1000}})

    assert source.dry_run()["batches"] == 100


# --- bad inputs ----------------------------------------------------------------------------

BAD_BODIES = [
    ({}, "the job has no source: give one of item_list, delimited_files, file_path_lister"),
    (
        {"item_list": {"items": [1], "batch_size": 1}, "delimited_files": {"paths": ["/x"]}},
        "the job has 2 sources (item_list, delimited_files): give one",
    ),
    ({"item_list": [1, 2]}, "item_list: must be an object, got [1, 2]"),
    ({"item_list": {"batch_size": 1}}, "item_list.items: missing; give a non-empty list of items"),
    (
        {"item_list": {"items": [], "batch_size": 1}},
        "item_list.items: must be a non-empty list, got []",
    ),
    (
        {"item_list": {"items": "ab", "batch_size": 1}},
        'item_list.items: must be a non-empty list, got "ab"',
    ),
    ({"item_list": {"items": [1]}}, "item_list.batch_size: missing; give an integer >= 1"),
    (
        {"item_list": {"items": [1], "batchsize": 1}},
        'item_list: unknown key "batchsize" (did you mean "batch_size"?)',
    ),
    (
        {"item_list": {"items": [1], "batch_size": 1, "zzz": 1}},
        'item_list: unknown key "zzz" (known keys: items, batch_size)',
    ),
    (
        {"delimited_files": {"s3_paths": ["/a"], "paths": ["/b"], "batch_size": 1}},
        'delimited_files: give "s3_paths" or its alias "paths", not both',
    ),
    (
        {"delimited_files": {"batch_size": 1}},
        "delimited_files.s3_paths: missing; give a list of files or directories",
    ),
    (
        {"delimited_files": {"s3_paths": [], "batch_size": 1}},
        "delimited_files.s3_paths: must list at least one file or directory",
    ),
    (
        {"file_path_lister": {"paths": "/data", "batch_size": 1}},
        'file_path_lister.paths: must be a list of paths, got "/data"',
    ),
    (
        {"file_path_lister": {"s3_paths": ["/a", " "], "batch_size": 1}},
        'file_path_lister.s3_paths[1]: must be a path, got " "',
    ),
    (
        {"delimited_files": {"paths": ["/a"], "includes": "*.jsonl", "batch_size": 1}},
        'delimited_files.includes: must be a list of glob patterns, got "*.jsonl"',
    ),
    (
        {"delimited_files": {"paths": ["/a"], "excludes": [3], "batch_size": 1}},
        "delimited_files.excludes[0]: must be a glob pattern, got 3",
    ),
    (
        {"delimited_files": {"paths": ["/a"], "include": ["*"], "batch_size": 1}},
        'delimited_files: unknown key "include" (did you mean "includes"?)',
    ),
    (
        {"delimited_files": {"paths": ["gs://bucket/a.jsonl"], "batch_size": 1}},
        'delimited_files.paths[0]: gs://bucket/a.jsonl: unsupported URL scheme "gs://"',
    ),
    (
        {"delimited_files": {"paths": ["file://host/a.jsonl"], "batch_size": 1}},
        "delimited_files.paths[0]: file://host/a.jsonl: a file:// URL names an absolute path:"
        " file:///a/b",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_bodies_are_refused_with_a_message_that_says_where(
    body: dict[str, Any], message: str
) -> None:
    assert error_of(body) == message


@pytest.mark.parametrize("kind", SOURCE_KINDS)
@pytest.mark.parametrize(
    ("batch_size", "shown"),
    [
        *((0, "0"), (-3, "-3"), (True, "true"), ("10", '"10"'), (2.0, "2.0"), (None, "null")),
        (2**63, str(2**63)),  # beyond SQLite's int64
    ],
)
def test_batch_size_must_be_a_positive_integer(kind: str, batch_size: Any, shown: str) -> None:
    section = {"items": [1]} if kind == "item_list" else {"paths": ["/a"]}

    message = error_of({kind: {**section, "batch_size": batch_size}})

    assert message == f"{kind}.batch_size: must be an integer >= 1 (and below 2**63), got {shown}"


def test_source_error_is_an_http_400() -> None:
    assert SourceError("x").status_code == 400


def test_a_missing_path_is_named_with_where_it_was_looked_for(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [1])
    body = {"delimited_files": {"paths": ["a.jsonl", "missing.jsonl"], "batch_size": 1}}

    assert error_of(body, base_dir=tmp_path) == (
        f"delimited_files.paths[1]: missing.jsonl does not exist "
        f"(resolved to {tmp_path / 'missing.jsonl'})"
    )


def test_no_matching_files_is_an_error(tmp_path: Path) -> None:
    make_tree(tmp_path)
    body = {"file_path_lister": {"paths": [str(tmp_path)], "includes": ["*.csv"], "batch_size": 1}}

    message = error_of(body)

    assert message.startswith(f'file_path_lister: no files matched paths ["{tmp_path}"]')
    assert '(includes ["*.csv"], excludes []; 5 files found before filtering;' in message


def test_an_empty_directory_matches_no_files(tmp_path: Path) -> None:
    body = {"delimited_files": {"paths": [str(tmp_path)], "batch_size": 1}}

    assert "no files matched" in error_of(body)


# --- file listing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("includes", "excludes", "expected"),
    [
        (None, None, ["a.jsonl", "notes.txt", "sub/b.jsonl", "sub/deep/c.jsonl", "sub/skip.jsonl"]),
        (["**/*.jsonl"], [], ["a.jsonl", "sub/b.jsonl", "sub/deep/c.jsonl", "sub/skip.jsonl"]),
        (["**.jsonl"], ["**/deep/**"], ["a.jsonl", "sub/b.jsonl", "sub/skip.jsonl"]),
        (["{root}/*.jsonl"], [], ["a.jsonl"]),  # one "*" stays within a directory
        (
            ["{root}/**/*.jsonl"],
            [],
            ["a.jsonl", "sub/b.jsonl", "sub/deep/c.jsonl", "sub/skip.jsonl"],
        ),
        (["{root}/sub/*"], ["**/skip.*"], ["sub/b.jsonl"]),  # excludes win
        (["**/[ab].jsonl"], [], ["a.jsonl", "sub/b.jsonl"]),
        (["**/[!ab].jsonl"], [], ["sub/deep/c.jsonl"]),
        (["**/?.*"], ["**.txt"], ["a.jsonl", "sub/b.jsonl", "sub/deep/c.jsonl"]),
    ],
)
def test_includes_and_excludes_match_the_whole_path(
    tmp_path: Path, includes: list[str] | None, excludes: list[str] | None, expected: list[str]
) -> None:
    make_tree(tmp_path)
    section: dict[str, Any] = {"paths": [str(tmp_path)], "batch_size": 100}
    if includes is not None:
        section["includes"] = [p.replace("{root}", str(tmp_path)) for p in includes]
    if excludes is not None:
        section["excludes"] = [p.replace("{root}", str(tmp_path)) for p in excludes]

    source = parse_source({"file_path_lister": section})

    assert all_batches(source) == [[str(tmp_path / name) for name in expected]]


def test_files_are_listed_sorted_within_each_path_in_the_order_paths_are_given(
    tmp_path: Path,
) -> None:
    for name in ["z/2", "z/1", "a/b/1", "a/a", "a/c"]:
        write_jsonl(tmp_path / name, [name])
    paths = [str(tmp_path / "z"), str(tmp_path / "a"), str(tmp_path / "z" / "1")]

    source = parse_source({"file_path_lister": {"paths": paths, "batch_size": 2}})

    names = ["z/1", "z/2", "a/a", "a/b/1", "a/c"]  # z/1 a second time is listed once
    assert source.describe()["files"] == [str(tmp_path / name) for name in names]
    assert all_batches(source) == [
        [str(tmp_path / "z/1"), str(tmp_path / "z/2")],
        [str(tmp_path / "a/a"), str(tmp_path / "a/b/1")],
        [str(tmp_path / "a/c")],
    ]


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data" / "a.jsonl", [1, 2])
    body = {"delimited_files": {"s3_paths": ["data/../data/a.jsonl"], "batch_size": 5}}

    source = parse_source(body, base_dir=tmp_path)

    assert source.describe()["files"] == [str(tmp_path / "data" / "a.jsonl")]
    assert all_batches(source) == [[1, 2]]


def test_file_urls_name_local_files(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "with space" / "a.jsonl", ["x"])
    url = path.as_uri()  # file:///.../with%20space/a.jsonl
    assert "%20" in url

    source = parse_source({"file_path_lister": {"s3_paths": [url], "batch_size": 1}})

    assert all_batches(source) == [[str(path)]]


# --- delimited files -------------------------------------------------------------------------


def test_batches_are_cut_across_file_boundaries(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b.jsonl", [{"b": 1}, {"b": 2}, {"b": 3}])
    write_jsonl(tmp_path / "a.jsonl", [{"a": 1}, {"a": 2}, {"a": 3}], blank_lines=True)
    (tmp_path / "c.jsonl").write_bytes(b'"c1"\r\n\r\n"c2"')  # CRLF, no final newline
    body = {"delimited_files": {"paths": [str(tmp_path)], "batch_size": 2}}

    source = parse_source(body)

    assert all_batches(source) == [
        [{"a": 1}, {"a": 2}],
        [{"a": 3}, {"b": 1}],
        [{"b": 2}, {"b": 3}],
        ["c1", "c2"],
    ]
    assert source.dry_run() == {
        "kind": "delimited_files",
        "batch_size": 2,
        "batches": 4,
        "items": 8,
        "files": [str(tmp_path / name) for name in ["a.jsonl", "b.jsonl", "c.jsonl"]],
    }


def test_an_invalid_json_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", list(range(16)))
    with path.open("a") as f:
        f.write("{not json\n")
    source = parse_source({"delimited_files": {"paths": [str(path)], "batch_size": 100}})

    with pytest.raises(SourceError) as caught:
        source.dry_run()

    assert caught.value.message == (
        f"delimited_files: {path} line 17: invalid JSON (Expecting property name enclosed in "
        "double quotes)"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"", "invalid JSON (Expecting value)"),
        (b"[1, 2", "invalid JSON (Expecting ',' delimiter)"),
        # Two values on one line are two items in disguise: refused, never spliced in.
        (b"1, 2", "invalid JSON (Extra data after the first value)"),
        (b'{"a": 1} {"b": 2}', "invalid JSON (Extra data after the first value)"),
        (b"[1", "invalid JSON (Expecting ',' delimiter)"),
        (b'"\xff\xfe\xfa"', "invalid JSON (the line is not UTF-8: invalid start byte)"),
        (b'"' + b"x" * (MAX_ITEM_BYTES - 1) + b'"', "item is 262145 bytes, larger than the"),
        # "é" is 2 bytes in the file but encodes as 6: 110,002 bytes of line, 300,002 of item
        (('"' + "é" * 50_000 + '"').encode(), "item is 300002 bytes, larger than the 262144-byte"),
        # 1e15 re-encodes as 1000000000000000.0: 70,001 bytes of line, 266,001 of item
        (b"[" + b",".join([b"1e15"] * 14_000) + b"]", "item is 266001 bytes, larger than the"),
        (b"[" + b" " * MAX_LINE_BYTES + b"]", f"line is longer than {MAX_LINE_BYTES} bytes"),
    ],
)
def test_a_bad_line_is_refused_naming_the_file_and_line(
    tmp_path: Path, line: bytes, problem: str
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"ok": 1}\n' + (line or b"-") + b'\n{"ok": 3}\n')
    source = parse_source({"delimited_files": {"paths": [str(path)], "batch_size": 1}})

    with pytest.raises(SourceError) as caught:
        all_batches(source)

    assert caught.value.message.startswith(f"delimited_files: {path} line 2: {problem}")


def test_lines_are_stored_as_written_and_read_back_as_their_items(tmp_path: Path) -> None:
    lines = [
        '\ufeff{"first": true}',  # a byte order mark on the first line
        '  {"spaced" : [1, 2.50, 1e3]}\t',
        '"naïve café ✓"',
        "NaN",
        "null",
    ]
    path = tmp_path / "a.jsonl"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    source = parse_source({"delimited_files": {"paths": [str(path)], "batch_size": 2}})

    encoded = list(source.encoded_batches())

    assert [size for size, _ in encoded] == [2, 2, 1]
    assert encoded[1][1] == '["naïve café ✓",NaN]'
    items = [item for _, text in encoded for item in json.loads(text)]
    expected = [json.loads(line.lstrip("\ufeff")) for line in lines]
    assert json.dumps(items) == json.dumps(expected)
    assert all_batches(source) == [json.loads(text) for _, text in encoded]


def test_an_item_at_the_limit_in_a_file_is_accepted(tmp_path: Path) -> None:
    item = "x" * (MAX_ITEM_BYTES - 2)
    path = write_jsonl(tmp_path / "a.jsonl", [item, 1])

    source = parse_source({"delimited_files": {"paths": [str(path)], "batch_size": 1}})

    assert all_batches(source) == [[item], [1]]


def test_a_file_deleted_after_parsing_is_reported_while_reading(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [1])
    source = parse_source({"delimited_files": {"paths": [str(path)], "batch_size": 1}})
    path.unlink()

    with pytest.raises(SourceError, match=r"a\.jsonl: cannot be read \(No such file"):
        all_batches(source)


def test_large_files_are_streamed_batch_by_batch(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json.dumps({"text": "y" * 100}) + "\n"
    with path.open("w") as f:
        f.writelines(line for _ in range(50_000))  # about 5.6 MB
        f.write("not json\n")
    assert path.stat().st_size > 5_000_000
    source = parse_source({"delimited_files": {"paths": [str(path)], "batch_size": 1000}})

    batches = source.batches()
    first = next(batches)  # comes out although the file's last line is invalid

    assert len(first) == 1000
    assert first[0] == {"text": "y" * 100}
    with pytest.raises(SourceError, match="line 50001: invalid JSON"):
        for _ in batches:
            pass


# --- specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_a_source_rebuilds_from_its_spec(tmp_path: Path, kind: str) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"n": 1}, {"n": 2}, {"n": 3}])
    write_jsonl(tmp_path / "b.jsonl", [{"n": 4}])
    if kind == "item_list":
        section: dict[str, Any] = {"items": [{"n": 1}, [2], "3", None], "batch_size": 3}
    else:
        section = {"paths": [str(tmp_path)], "batch_size": 3}
    source = parse_source({kind: section})

    spec = json.loads(json.dumps(source.to_spec()))
    rebuilt = source_from_spec(spec)

    assert rebuilt.kind == kind
    assert rebuilt.describe() == source.describe()
    assert all_batches(rebuilt) == all_batches(source)


def test_a_file_source_spec_keeps_the_files_it_resolved(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [1])
    source = parse_source({"delimited_files": {"paths": [str(tmp_path)], "batch_size": 3}})
    write_jsonl(tmp_path / "b.jsonl", [2])  # arrives after the job was submitted

    rebuilt = source_from_spec(source.to_spec())

    assert all_batches(rebuilt) == [[1]]


@pytest.mark.parametrize(
    "spec",
    [{"kind": "item_list", "batch_size": 1}, {"kind": "other", "batch_size": 1, "items": [1]}],
)
def test_an_invalid_spec_is_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(SourceError, match="source spec: not a valid spec for kind"):
        source_from_spec(spec)
