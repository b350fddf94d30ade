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
#: The most digits an integer in a request may have (int64 has 19).
MAX_INT_DIGITS = 100

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_LONG_DIGITS = re.compile(rb"(?<![0-9])[0-9]{%d}" % (MAX_INT_DIGITS + 1))
_LONG_EXPONENT = re.compile(rb"[eE][+-]?[0-9]{3}")
_HIGH, _LOW = rb"\\u[dD][89abAB][0-9a-fA-F]{2}", rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_SURROGATE = re.compile(rb"%s(?!%s)|(?<!%s)%s" % (_HIGH, _LOW, _HIGH, _LOW))
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def parse(raw: bytes) -> Any:
    """Parse a request body; raise ``InvalidRequest`` naming what is wrong.

    Raises:
        InvalidRequest: Not UTF-8 JSON, nested deeper than ``MAX_DEPTH``, an integer
            longer than ``MAX_INT_DIGITS`` digits, or NaN/Infinity.
    """
    check_depth(raw)
    if b"\\u" in raw and _LONE_SURROGATE.search(raw):
        raise InvalidRequest(
            "the request body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which"
            " is not a character"
        )
    # The number hooks cost a call per number: only a body with a long digit run or a long
    # exponent (a number that may not fit) needs them.
    try:
        if _LONG_DIGITS.search(raw) or _LONG_EXPONENT.search(raw):
            return json.loads(raw, parse_constant=_no_constant, parse_int=_int, parse_float=_float)
        return json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"the request body is not valid JSON: {e}") from None
    except RecursionError:  # brackets inside strings can hide depth from check_depth
        raise InvalidRequest(_too_deep()) from None


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


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise InvalidRequest(
            f"the request body holds an integer of {digits} digits, over the limit of"
            f" {MAX_INT_DIGITS}"
        )
    return int(text)
