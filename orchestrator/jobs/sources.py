"""Parse a job's source section and yield the job's batches in order.

A job has exactly one source, under Cortex's names: ``item_list`` carries its items
inline, ``delimited_files`` streams newline-delimited JSON files, and
``file_path_lister`` makes each matching file's path an item. Paths are listed and
opened through one handler per URL scheme (``_SCHEMES``): local paths and ``file://``
URLs inside the source roots, and ``s3://`` objects through the orchestrator's AWS
clients (``s3_objects``).
"""

from __future__ import annotations

import difflib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import IO, Any

from orchestrator.aws import Clients
from orchestrator.errors import SourceError
from orchestrator.jobs import local_files, s3_objects
from orchestrator.jobs.globs import Glob

SOURCE_KINDS = ("item_list", "delimited_files", "file_path_lister")
MAX_ITEM_BYTES = 256 * 1024
MAX_LINE_BYTES = 8 * MAX_ITEM_BYTES  # a longer line is refused before it is parsed

_ITEM_LIST_KEYS = ("items", "batch_size")
_FILE_KEYS = ("s3_paths", "paths", "includes", "excludes", "batch_size")
_SIZE_CHECK_GROUP = 256
# Re-encoding parsed JSON grows it at most 4.5 times ("1e15" -> "1000000000000000.0",
# "é" -> "\u00e9" is 3x), so a line 5 times under the limit needs no size check.
_MAX_GROWTH = 5
# ensure_ascii (the default) makes the output pure ASCII, so len() counts UTF-8 bytes.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder()
_JSON_WHITESPACE = " \t\r\n"
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class Source(ABC):
    """A job's validated source: it knows its batch size and yields its batches."""

    kind: str
    batch_size: int

    @abstractmethod
    def batches(self) -> Iterator[list[Any]]:
        """Yield the job's batches in order, lazily (files are streamed, never read whole)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Return a JSON summary for status and dry runs, without the items."""

    @abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """Return a JSON-serialisable spec that ``source_from_spec`` rebuilds this from."""

    def encoded_batches(self) -> Iterator[tuple[int, str]]:
        """Yield each batch as its number of items and its JSON text, the form it is stored in."""
        for batch in self.batches():
            yield len(batch), json.dumps(batch)

    def placed_batches(self) -> Iterator[tuple[int, int, str]]:
        """Yield each batch as the index of its first item, its size and its JSON text.

        Items are numbered from 0 in order; a retry's source keeps its parent's numbers.
        """
        first = 0
        for size, payload in self.encoded_batches():
            yield first, size, payload
            first += size

    def dry_run(self) -> dict[str, Any]:
        """Read the whole source, validating every item, and count batches and items."""
        batches = items = 0
        for size, _ in self.encoded_batches():
            batches += 1
            items += size
        return {
            "kind": self.kind,
            "batch_size": self.batch_size,
            "batches": batches,
            "items": items,
        }


class ItemListSource(Source):
    """Items given inline in the job submission."""

    kind = "item_list"

    def __init__(self, items: list[Any], batch_size: int) -> None:
        self.items = items
        self.batch_size = batch_size

    def batches(self) -> Iterator[list[Any]]:
        """Yield consecutive slices of ``batch_size`` items."""
        for start in range(0, len(self.items), self.batch_size):
            yield self.items[start : start + self.batch_size]

    def describe(self) -> dict[str, Any]:
        """Return the kind, batch size and item count."""
        return {"kind": self.kind, "batch_size": self.batch_size, "items": len(self.items)}

    def to_spec(self) -> dict[str, Any]:
        """Return the kind, batch size and the items themselves."""
        return {"kind": self.kind, "batch_size": self.batch_size, "items": self.items}


class _FileSource(Source):
    """A source over the ordered list of file locations resolved at parse time."""

    def __init__(self, files: list[str], batch_size: int, aws: Clients | None = None) -> None:
        self.files = files
        self.batch_size = batch_size
        self.aws = aws

    def describe(self) -> dict[str, Any]:
        """Return the kind, batch size and the files in reading order."""
        return {"kind": self.kind, "batch_size": self.batch_size, "files": list(self.files)}

    def to_spec(self) -> dict[str, Any]:
        """Return the resolved files, so that a resumed job reads exactly the same ones."""
        return self.describe()

    def dry_run(self) -> dict[str, Any]:
        """Count batches and items as the base class does, and list the files."""
        return {**super().dry_run(), "files": list(self.files)}


class DelimitedFilesSource(_FileSource):
    """Newline-delimited JSON files; each non-blank line is an item."""

    kind = "delimited_files"

    def batches(self) -> Iterator[list[Any]]:
        """Yield batches cut across file boundaries, streaming the files line by line."""
        for _, text in self.encoded_batches():
            yield json.loads(text)

    def encoded_batches(self) -> Iterator[tuple[int, str]]:
        """Join each batch's lines, each checked to be one JSON value, as they were written.

        Nothing is parsed into objects and encoded again: on large sources that was most
        of enqueuing's time.
        """
        reach = _Reach(aws=self.aws)
        texts = (text for location in self.files for text in _read_json_texts(location, reach))
        for chunk in _chunked(texts, self.batch_size):
            yield len(chunk), f"[{','.join(chunk)}]"


class FilePathListerSource(_FileSource):
    """Each matching file's path (or URL) is an item."""

    kind = "file_path_lister"

    def batches(self) -> Iterator[list[Any]]:
        """Yield batches of file paths."""
        yield from _chunked(self.files, self.batch_size)


def parse_source(
    body: dict[str, Any],
    *,
    base_dir: Path | None = None,
    roots: list[Path] | None = None,
    aws: Clients | None = None,
) -> Source:
    """Pick and validate the one source in a job submission body.

    Args:
        body: The whole submission; keys other than the source kinds are ignored here.
        base_dir: Directory that relative paths resolve against (default: the cwd).
        roots: The folders local paths must resolve inside (after ``..``, percent-escapes
            and symlinks); None allows any path.
        aws: The clients ``s3://`` paths are listed and read with (S3 paths are the
            user's own account's: no roots apply); None refuses them.

    Raises:
        SourceError: The body has no source or several, or its source is invalid.
    """
    if not isinstance(body, dict):
        raise SourceError(f"the job must be a JSON object, got {_show(body)}")
    present = [kind for kind in SOURCE_KINDS if body.get(kind) is not None]
    if not present:
        raise SourceError(f"the job has no source: give one of {', '.join(SOURCE_KINDS)}")
    if len(present) > 1:
        raise SourceError(f"the job has {len(present)} sources ({', '.join(present)}): give one")
    kind = present[0]
    if kind == ItemListSource.kind:
        return _parse_item_list(body[kind])
    return _parse_file_source(kind, body[kind], _Reach(base_dir, roots, aws))


def source_from_spec(spec: dict[str, Any], *, aws: Clients | None = None) -> Source:
    """Rebuild a source from ``Source.to_spec()``, e.g. to resume a job after a restart.

    ``aws`` reads ``s3://`` files, as in ``parse_source``.
    """
    kind = spec.get("kind")
    batch_size = _batch_size("source spec", spec)
    if kind == ItemListSource.kind and isinstance(spec.get("items"), list):
        return ItemListSource(spec["items"], batch_size)
    if kind in _FILE_SOURCES and isinstance(spec.get("files"), list):
        return _FILE_SOURCES[kind]([str(f) for f in spec["files"]], batch_size, aws)
    raise SourceError(f"source spec: not a valid spec for kind {_show(kind)}")


_FILE_SOURCES: dict[Any, type[_FileSource]] = {
    cls.kind: cls for cls in (DelimitedFilesSource, FilePathListerSource)
}


# --- validating a section --------------------------------------------------------------


def _parse_item_list(section: Any) -> ItemListSource:
    """Validate an ``item_list`` section, including every item's encoded size."""
    section = _check_keys("item_list", section, _ITEM_LIST_KEYS)
    if "items" not in section:
        raise SourceError("item_list.items: missing; give a non-empty list of items")
    items = section["items"]
    if not isinstance(items, list) or not items:
        raise SourceError(f"item_list.items: must be a non-empty list, got {_show(items)}")
    batch_size = _batch_size("item_list", section)
    _check_item_sizes(items)
    return ItemListSource(items, batch_size)


def _parse_file_source(kind: str, section: Any, reach: _Reach) -> _FileSource:
    """Validate a file source section and resolve (cheaply) which files it reads."""
    section = _check_keys(kind, section, _FILE_KEYS)
    key = _paths_key(kind, section)
    paths = _strings(f"{kind}.{key}", section[key], "path")
    if not paths:
        raise SourceError(f"{kind}.{key}: must list at least one file or directory")
    includes = _strings(f"{kind}.includes", section.get("includes", []), "glob pattern")
    excludes = _strings(f"{kind}.excludes", section.get("excludes", []), "glob pattern")
    batch_size = _batch_size(kind, section)
    wanted = [Glob(f"{kind}.includes[{i}]", p) for i, p in enumerate(includes)]
    wanted = wanted or [Glob(f"{kind}.includes", "**")]
    unwanted = [Glob(f"{kind}.excludes[{i}]", p) for i, p in enumerate(excludes)]
    found = _list_files(f"{kind}.{key}", paths, reach)
    files = [f for f in found if _any_match(wanted, f) and not _any_match(unwanted, f)]
    if not files:
        raise SourceError(
            f"{kind}: no files matched {key} {_show(paths)} (includes {_show(includes)}, "
            f"excludes {_show(excludes)}; {len(found)} files found before filtering; "
            'patterns match the whole path, e.g. "**/*.jsonl")'
        )
    return _FILE_SOURCES[kind](files, batch_size, reach.aws)


def _check_keys(where: str, section: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Return ``section`` if it is an object whose keys are all in ``allowed``."""
    if not isinstance(section, dict):
        raise SourceError(f"{where}: must be an object, got {_show(section)}")
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(allowed)}"
            raise SourceError(f'{where}: unknown key "{key}" ({hint})')
    return section


def _batch_size(where: str, section: dict[str, Any]) -> int:
    """Return the section's ``batch_size``, an integer >= 1 (booleans refused)."""
    if "batch_size" not in section:
        raise SourceError(f"{where}.batch_size: missing; give an integer >= 1")
    value = section["batch_size"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise SourceError(
            f"{where}.batch_size: must be an integer >= 1 (and below 2**63), got {_show(value)}"
        )
    return value


def _paths_key(kind: str, section: dict[str, Any]) -> str:
    """Return which key gives the paths: ``s3_paths`` or its alias ``paths``."""
    given = [key for key in ("s3_paths", "paths") if key in section]
    if len(given) > 1:
        raise SourceError(f'{kind}: give "s3_paths" or its alias "paths", not both')
    if not given:
        raise SourceError(f"{kind}.s3_paths: missing; give a list of files or directories")
    return given[0]


def _strings(where: str, value: Any, what: str) -> list[str]:
    """Return ``value`` if it is a list of non-blank strings (each one a ``what``)."""
    if not isinstance(value, list):
        raise SourceError(f"{where}: must be a list of {what}s, got {_show(value)}")
    for index, text in enumerate(value):
        if not isinstance(text, str) or not text.strip():
            raise SourceError(f"{where}[{index}]: must be a {what}, got {_show(text)}")
        if "\0" in text:
            raise SourceError(f"{where}[{index}]: holds a NUL character")
    return value


def _any_match(patterns: list[Glob], location: str) -> bool:
    """Return whether any of ``patterns`` matches the whole of ``location``."""
    return any(pattern.match(location) for pattern in patterns)


# --- checking and reading items ---------------------------------------------------------


def _check_item_sizes(items: list[Any]) -> None:
    """Check every item's size, fast: a group of items that encodes within the limit
    proves each of its items does, so only larger groups are checked item by item."""
    for start in range(0, len(items), _SIZE_CHECK_GROUP):
        group = items[start : start + _SIZE_CHECK_GROUP]
        try:
            if len(_COMPACT.encode(group)) <= MAX_ITEM_BYTES:
                continue
        except (TypeError, ValueError):
            pass  # the item-by-item pass names the item that cannot be encoded
        for offset, item in enumerate(group):
            _check_item_size(item, f"item_list.items[{start + offset}]")


def _check_item_size(item: Any, where: str) -> None:
    """Raise if ``item``'s compact JSON encoding is larger than ``MAX_ITEM_BYTES``."""
    try:
        size = len(_COMPACT.encode(item))
    except (TypeError, ValueError) as e:
        raise SourceError(f"{where}: item cannot be encoded as JSON ({e})") from e
    if size > MAX_ITEM_BYTES:
        raise SourceError(
            f"{where}: item is {size} bytes, larger than the {MAX_ITEM_BYTES}-byte limit "
            "for one item"
        )


def _read_json_texts(location: str, reach: _Reach) -> Iterator[str]:
    """Yield the items of one delimited file as JSON text, reading a bounded line at a time."""
    try:
        with _scheme_handler(location, "delimited_files").open_file(location, reach) as stream:
            lines = iter(partial(stream.readline, MAX_LINE_BYTES + 1), b"")
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield _check_line(line, f"delimited_files: {location} line {number}")
    except OSError as e:
        raise SourceError(f"delimited_files: {location}: cannot be read ({e.strerror or e})") from e


def _check_line(line: bytes, where: str) -> str:
    """Return one line of a delimited file as the text of exactly one JSON value.

    Raises:
        SourceError: The line is too long, not UTF-8, not JSON, holds more than one
            value, or its item is over ``MAX_ITEM_BYTES``.
    """
    if len(line.rstrip(b"\r\n")) > MAX_LINE_BYTES:
        raise SourceError(
            f"{where}: line is longer than {MAX_LINE_BYTES} bytes "
            f"(one item may be at most {MAX_ITEM_BYTES} bytes)"
        )
    try:
        text = line.decode("utf-8-sig").strip(_JSON_WHITESPACE)
        item, end = _DECODER.raw_decode(text)
    except UnicodeDecodeError as e:
        raise SourceError(f"{where}: invalid JSON (the line is not UTF-8: {e.reason})") from e
    except json.JSONDecodeError as e:
        raise SourceError(f"{where}: invalid JSON ({e.msg})") from e
    except (ValueError, RecursionError) as e:  # a huge integer, deep nesting
        raise SourceError(f"{where}: invalid JSON ({e})") from e
    if end != len(text):
        raise SourceError(f"{where}: invalid JSON (Extra data after the first value)")
    if len(line) * _MAX_GROWTH > MAX_ITEM_BYTES:
        _check_item_size(item, where)
    return text


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of ``size`` consecutive items (the last one may be shorter)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# --- listing and opening files: one handler per URL scheme -----------------------------


@dataclass(frozen=True)
class _Reach:
    """What a job's paths may reach: local ones resolve against ``base_dir`` (None: the
    cwd) inside ``roots`` (None: anywhere); ``s3://`` ones go through ``aws``."""

    base_dir: Path | None = None
    roots: list[Path] | None = None
    aws: Clients | None = None


@dataclass(frozen=True)
class _Scheme:
    """How to list and open the paths of one URL scheme."""

    list_files: Callable[[str, _Reach], list[str]]  # path as given -> files, sorted
    open_file: Callable[[str, _Reach], IO[bytes]]  # a location that list_files returned


def _list_local(path: str, reach: _Reach) -> list[str]:
    return local_files.list_files(path, reach.base_dir, reach.roots)


def _open_local(location: str, _: _Reach) -> IO[bytes]:
    return local_files.open_file(location)


def _aws(path: str, reach: _Reach) -> Clients:
    """Return the AWS clients to reach an ``s3://`` path with."""
    if reach.aws is None:
        raise SourceError(f"{path}: s3:// paths are not served here (no AWS clients given)")
    return reach.aws


def _list_s3(path: str, reach: _Reach) -> list[str]:
    return s3_objects.list_objects(path, _aws(path, reach))


def _open_s3(location: str, reach: _Reach) -> IO[bytes]:
    return s3_objects.open_object(location, _aws(location, reach))


_SCHEMES = {
    "": _Scheme(_list_local, _open_local),
    "file": _Scheme(_list_local, _open_local),
    s3_objects.SCHEME: _Scheme(_list_s3, _open_s3),
}


def _scheme_of(path: str) -> str:
    """Return the lower-cased URL scheme of ``path``, or "" for a plain path."""
    match = _URL_SCHEME.match(path)
    return match.group(1).lower() if match else ""


def _scheme_handler(path: str, where: str) -> _Scheme:
    """Return the handler for ``path``'s URL scheme, or say that there is none."""
    scheme = _scheme_of(path)
    if scheme in _SCHEMES:
        return _SCHEMES[scheme]
    raise SourceError(f'{where}: {path}: unsupported URL scheme "{scheme}://"')


def _list_files(where: str, paths: list[str], reach: _Reach) -> list[str]:
    """List the files under each path in turn (each one sorted), every file once."""
    files: dict[str, None] = {}
    for index, path in enumerate(paths):
        at = f"{where}[{index}]"
        try:
            found = _scheme_handler(path, at).list_files(path, reach)
        except FileNotFoundError as e:
            resolved = f" (resolved to {e.filename})" if e.filename not in (None, path) else ""
            raise SourceError(f"{at}: {path} does not exist{resolved}") from e
        except OSError as e:
            raise SourceError(f"{at}: {path} cannot be listed ({e.strerror or e})") from e
        except ValueError as e:
            raise SourceError(f"{at}: {e}") from e
        files.update(dict.fromkeys(found))
    return list(files)


def _show(value: Any) -> str:
    """Return ``value`` as short JSON text for an error message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
