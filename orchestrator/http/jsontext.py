"""Parsing JSON from strangers: bounded nesting, bounded integers, no NaN or Infinity.

``json.loads`` alone lets a 10,000-deep array raise ``RecursionError``, a 5,000-digit
number raise ``ValueError``, and ``NaN`` through as a float. ``parse`` turns each into
an ``InvalidRequest`` that says what is wrong, before anything else sees the document.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from orchestrator.errors import InvalidRequest

#: The deepest nesting of arrays and objects a request may have.
MAX_DEPTH = 100
#: The most digits an integer in a request may have (int64 has 19).
MAX_INT_DIGITS = 100

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_INT_DIGITS + 1))
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def parse(raw: bytes) -> Any:
    """Parse a request body; raise ``InvalidRequest`` naming what is wrong.

    Raises:
        InvalidRequest: Not UTF-8 JSON, nested deeper than ``MAX_DEPTH``, an integer
            longer than ``MAX_INT_DIGITS`` digits, or NaN/Infinity.
    """
    check_depth(raw)
    # The integer hook costs a call per integer: only a body with a long digit run needs it.
    long_digits = _LONG_DIGITS.search(raw) is not None
    try:
        if long_digits:
            return json.loads(raw, parse_constant=_no_constant, parse_int=_int)
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


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise InvalidRequest(
            f"the request body holds an integer of {digits} digits, over the limit of"
            f" {MAX_INT_DIGITS}"
        )
    return int(text)
