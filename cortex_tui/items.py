"""Reading a job's items from files, and ``key=value`` config pairs, with clear errors (the CLI,
the terminal UI and the Python client read them alike)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cortex_tui.errors import InputError


def read_items(path: Path) -> list[Any]:
    """Return the items of a file holding one JSON list."""
    text = _read(path)
    try:
        items = strict_json(text)
    except json.JSONDecodeError as e:
        hint = " (one item per line? use --jsonl)" if e.msg == "Extra data" else ""
        raise InputError(f"{path}: not valid JSON: {e}{hint}") from None
    except ValueError as e:
        raise InputError(f"{path}: {e}") from None
    if not isinstance(items, list):
        raise InputError(
            f"{path}: expected a JSON list of items, got {_kind(items)}"
            " (for one item per line, use --jsonl)"
        )
    return _non_empty(path, items)


def read_jsonl(path: Path) -> list[Any]:
    """Return the items of a newline-delimited JSON file (one item per non-blank line)."""
    items = []
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(strict_json(line))
        except json.JSONDecodeError as e:
            hint = (
                " (one JSON list? use --items)" if number == 1 and line.lstrip()[:1] == "[" else ""
            )
            raise InputError(f"{path}: line {number} is not valid JSON: {e.msg}{hint}") from None
        except ValueError as e:
            raise InputError(f"{path}: line {number}: {e}") from None
    return _non_empty(path, items)


class TooMuch(ValueError):
    """JSON that Python cannot hold: nested too deeply, or a number too long or too large."""


def strict_json(text: str) -> Any:
    """Parse JSON as the orchestrator will: no NaN or Infinity, numbers and nesting bounded.

    Raises:
        json.JSONDecodeError: The text is not JSON.
        TooMuch: It is, but more than Python can hold.
        ValueError: It holds NaN or Infinity, which JSON cannot carry.
    """
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise TooMuch("nested too deeply to be read") from None
    except (json.JSONDecodeError, TooMuch):
        raise
    except ValueError as e:
        if "digits" in str(e):  # Python's limit on the digits of an integer
            limit = sys.get_int_max_str_digits()
            raise TooMuch(f"a number has more than {limit} digits") from None
        raise


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: JSON allows it, a float cannot hold it
        raise TooMuch(f"the number {text[:20]} is too large")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def split_config_line(line: str) -> list[str]:
    """Split one line of ``key=value`` pairs (a form's field) where the CLI's shell would.

    Spaces inside JSON brackets or a double-quoted string do not split, and the quotes stay
    (``tags=["a b", "c"]`` is one pair whose value is JSON); single quotes group a value
    and go (``name='two words'``).

    Raises:
        InputError: A quote or bracket is left open.
    """
    pairs: list[str] = []
    current: list[str] = []
    depth, quote, escaped = 0, "", False
    for char in line:
        if quote:  # inside a string: only its closing quote (not an escaped one) ends it
            if char == quote and not escaped:
                quote = ""
                if char == "'":
                    continue
            escaped = quote == '"' and char == "\\" and not escaped
            current.append(char)
        elif char == "'":
            quote = char
        elif char.isspace() and depth <= 0:
            if current:
                pairs.append("".join(current))
            current = []
        else:
            quote = '"' if char == '"' else ""
            depth += (char in "[{") - (char in "]}")
            current.append(char)
    if quote or depth > 0:
        raise InputError(f"config overrides: a {quote or 'bracket'} is left open in {line!r}")
    return [*pairs, "".join(current)] if current else pairs


def parse_config(pairs: list[str], note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Return ``key=value`` pairs as a nested object.

    A value that parses as JSON is taken as JSON (``3``, ``true``, ``[1, 2]``), anything
    else as a string (``NaN`` too: JSON has none). A value that looks like an object or a
    list but is not JSON (``{bad``, or a pattern like ``[a-z]+``) is a string too, and
    ``note`` is told so. A dotted key nests: ``model.depth=3`` -> ``{"model": {"depth": 3}}``.
    """
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.split(".")
        if not sep or not all(parts):
            raise InputError(f"--config {pair}: expected KEY=VALUE, e.g. --config threshold=0.5")
        try:
            value: Any = strict_json(raw)
        except TooMuch as e:
            raise InputError(f"--config {pair}: {e}") from None
        except ValueError as e:  # not JSON: a string
            if note is not None and raw.lstrip()[:1] in ("{", "["):
                note(f"--config {pair}: not JSON ({e}), so {key} is the string {raw!r}")
            value = raw
        target = config
        for depth, part in enumerate(parts[:-1]):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                where = ".".join(parts[: depth + 1])
                raise InputError(f"--config {pair}: {where} is already set to a value")
        if isinstance(target.get(parts[-1]), dict) and not isinstance(value, dict):
            raise InputError(f"--config {pair}: {key} already holds nested keys")
        target[parts[-1]] = value
    return config


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file of items") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None


def _non_empty(path: Path, items: list[Any]) -> list[Any]:
    if not items:
        raise InputError(f"{path}: holds no items; a job needs at least one")
    return items


def _kind(value: object) -> str:
    names = {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
