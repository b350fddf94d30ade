"""Parsing JSON from strangers: bounded nesting, bounded integers, no NaN or Infinity.

``json.loads`` alone lets a 10,000-deep array raise ``RecursionError``, a 5,000-digit
number raise ``ValueError``, and ``NaN`` through as a float. ``parse`` turns each into
an ``InvalidRequest`` that says what is wrong, before anything else sees the document.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from orchestrator.errors import InvalidRequest

#: The deepest nesting of arrays and objects a request may have.
MAX_DEPTH = 100
#: The most digits an integer in a request may have (Python's own limit for turning text
#: into an int; fields that are counts are checked against int64 where they are read).
MAX_INT_DIGITS = 4300

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def parse(raw: bytes) -> Any:
    """Parse a request body; raise ``InvalidRequest`` naming what is wrong.

    Raises:
        InvalidRequest: Not UTF-8 JSON, nested deeper than ``MAX_DEPTH``, an integer
            longer than ``MAX_INT_DIGITS`` digits, NaN/Infinity or a number too large for
            a float, or a lone UTF-16 surrogate escape.
    """
    check_depth(raw)
    if b"\\u" in raw:
        check_surrogates(raw)
    try:
        # The float hook costs a call per float (not per number): it is what catches 1e999.
        return json.loads(raw, parse_constant=_no_constant, parse_float=_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"the request body is not valid JSON: {e}") from None
    except RecursionError:  # brackets inside strings can hide depth from check_depth
        raise InvalidRequest(_too_deep()) from None
    except ValueError:  # Python refuses to read an int of more than 4,300 digits
        raise InvalidRequest(
            f"the request body holds an integer of more than {MAX_INT_DIGITS} digits"
        ) from None


def check_surrogates(raw: bytes) -> None:
    """Refuse ``\\ud800``-``\\udfff`` escapes that are not a high-low pair (not characters)."""
    pending_high_end = -1
    for match in _SURROGATE.finditer(raw):
        high = match.group()[3:4].lower() in b"89ab"
        if pending_high_end >= 0:
            if high or match.start() != pending_high_end:
                break  # the high one before this was not followed by its low one
            pending_high_end = -1
        elif high:
            pending_high_end = match.end()
        else:
            break  # a low one with no high one before it
    else:
        if pending_high_end < 0:
            return
    raise InvalidRequest(
        "the request body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is"
        " not a character"
    )


def check_depth(raw: bytes) -> None:
    """Refuse JSON nested deeper than about ``MAX_DEPTH``, in a few passes at C speed.

    Everything but brackets is dropped, then innermost ``[]``/``{}`` pairs are peeled off
    a level or two per pass. Brackets inside strings are dropped too before a refusal, so
    that only real nesting is refused.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    if _deeper_than_limit(raw.translate(None, _NOT_BRACKET)) and _deeper_than_limit(
        _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    ):
        raise InvalidRequest(_too_deep())


def _deeper_than_limit(brackets: bytes) -> bool:
    for _ in range(MAX_DEPTH):
        peeled = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if not peeled or len(peeled) == len(brackets):
            return False  # done, or unbalanced (json.loads says where)
        brackets = peeled
    return True


def _too_deep() -> str:
    return f"the request body nests arrays and objects deeper than {MAX_DEPTH} levels"


def _no_constant(name: str) -> NoReturn:
    raise InvalidRequest(f"the request body holds {name}, which is not JSON: send a number or null")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRequest(
            f"the request body holds the number {text[:20]}..., too large for a float"
            " (it would be Infinity, which is not JSON)"
        )
    return value
