"""Globs matched against whole paths, in time linear in the path whatever the pattern.

``*``, ``?`` and ``[...]`` stay within one path segment, ``**`` crosses ``/``, and ``**/``
may match no directory. A pattern with a few wildcards is matched as a regex (fast, and
its backtracking is bounded by the few stars); one with more is matched by walking the
set of pattern positions along the path (no backtracking at all), so that no pattern can
hold the server's threads: ``"**" * 20 + "x"`` as a regex never finishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.errors import SourceError

#: The longest glob a job may give.
MAX_PATTERN_CHARS = 1024
#: Patterns with at most this many wildcards are matched as regexes.
_REGEX_WILDCARDS = 2

_TOKEN = re.compile(r"\*\*/|\*\*|\*|\?|\[!?\]?[^\]]*\]|.", re.DOTALL)
_WILDCARDS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "lit", "?", "[]", "*", "**", "**/"
    text: str = ""
    negate: bool = False


class Glob:
    """A compiled glob; ``match(path)`` says whether it matches the whole path."""

    def __init__(self, where: str, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise SourceError(f"{where}: longer than {MAX_PATTERN_CHARS} characters")
        self.pattern = pattern
        self._tokens = _collapse([t for text in _TOKEN.findall(pattern) for t in _tokens(text)])
        try:
            self._regex = re.compile("".join(_regex(t) for t in self._tokens) + r"\Z", re.DOTALL)
        except re.error as e:
            raise SourceError(f"{where}: {pattern!r} is not a valid glob pattern ({e})") from None
        wildcards = sum(t.kind in _WILDCARDS for t in self._tokens)
        self._use_regex = wildcards <= _REGEX_WILDCARDS

    def match(self, path: str) -> bool:
        """Return whether the glob matches the whole of ``path``."""
        if self._use_regex:
            return self._regex.match(path) is not None
        return _walk(self._tokens, path)


def _tokens(text: str) -> list[_Token]:
    """Return the tokens of one piece of a pattern (an empty ``[]`` is literal text)."""
    if text in _WILDCARDS or text == "?":
        return [_Token(text)]
    negate = text.startswith("[!")
    members = text[1 + negate : -1]
    if text.startswith("[") and members:
        return [_Token("[]", members, negate)]
    return [_Token("lit", char) for char in text]


def _collapse(tokens: list[_Token]) -> list[_Token]:
    """Merge runs of stars: ``***``/``**/**`` match what one ``**`` does, ``**`` wins over ``*``."""
    out: list[_Token] = []
    for token in tokens:
        previous = out[-1].kind if out else ""
        if token.kind in ("*", "**") and previous in ("*", "**"):
            out[-1] = _Token("**" if "**" in (token.kind, previous) else "*")
        elif token.kind == "**/" and previous == "**/":
            continue
        else:
            out.append(token)
    return out


def _regex(token: _Token) -> str:
    if token.kind in _WILDCARDS:
        return _WILDCARDS[token.kind]
    if token.kind == "?":
        return "[^/]"
    if token.kind == "[]":
        chars = "".join(c if c == "-" else re.escape(c) for c in token.text)
        return f"[^/{chars}]" if token.negate else f"[{chars}]"
    return re.escape(token.text)


def _in_class(token: _Token, char: str) -> bool:
    found = False
    text, i = token.text, 0
    while i < len(text):
        if i + 2 < len(text) and text[i + 1] == "-":
            found = found or text[i] <= char <= text[i + 2]
            i += 3
        else:
            found = found or char == text[i]
            i += 1
    return found != token.negate and char != "/"


def _walk(tokens: list[_Token], path: str) -> bool:
    """Match by carrying the set of pattern positions along the path (a Thompson NFA).

    A state is ``(index, inside)``: the next token to match, and, for ``**/``, whether
    its ``.*`` has started (it may then end only with a ``/``).
    """
    end = len(tokens)

    def closure(states: set[tuple[int, bool]]) -> set[tuple[int, bool]]:
        stack, seen = list(states), set(states)
        while stack:
            index, inside = stack.pop()
            if index < end and not inside and tokens[index].kind in _WILDCARDS:
                following = (index + 1, False)  # a wildcard may match nothing
                if following not in seen:
                    seen.add(following)
                    stack.append(following)
        return seen

    states = closure({(0, False)})
    for char in path:
        moved: set[tuple[int, bool]] = set()
        for index, _inside in states:
            if index == end:
                continue
            token = tokens[index]
            if token.kind == "**":
                moved.add((index, False))
            elif token.kind == "*":
                if char != "/":
                    moved.add((index, False))
            elif token.kind == "**/":
                moved.add((index, True))
                if char == "/":
                    moved.add((index + 1, False))
            elif (
                (token.kind == "?" and char != "/")
                or (token.kind == "[]" and _in_class(token, char))
                or (token.kind == "lit" and char == token.text)
            ):
                moved.add((index + 1, False))
        states = closure(moved)
        if not states:
            return False
    return (end, False) in states
