"""Globs: the regex and the position-walking matcher agree, and no pattern hangs."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.errors import SourceError
from orchestrator.jobs.globs import MAX_PATTERN_CHARS, Glob, _walk

PATTERNS = [
    "**", "*", "**/*.jsonl", "**.jsonl", "**/deep/**", "/root/sub/*", "**/skip.*", "**/[ab].jsonl",
    "**/[!ab].jsonl", "**/?.*", "**.txt", "a/**/b", "a**b", "*a*b*c", "[a-c]*/**/[!x]?",
    "***", "**/**/x", "[]", "[!]", "a[", "**/a*b*c*d*e",
]  # fmt: skip
PATHS = [
    "", "a", "a.jsonl", "sub/b.jsonl", "sub/deep/c.jsonl", "sub/skip.jsonl", "/root/sub/x",
    "a/b", "a/x/y/b", "ab", "a/b/c", "xaybzc", "b/q/r/s", "[]", "[!]", "a[", "x", "q/a1b2c3d4e5",
    "c/deep/y", "a.txt", "z/z/z.txt",
]  # fmt: skip


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_two_matchers_agree(pattern: str) -> None:
    glob = Glob("includes[0]", pattern)
    for path in PATHS:
        by_regex = glob._regex.match(path) is not None
        assert _walk(glob._tokens, path) == by_regex, (pattern, path)


def test_patterns_that_would_backtrack_forever_answer_at_once() -> None:
    # As one regex, the first takes longer than the age of the universe on this path.
    path = "/data/" + "a" * 60
    for pattern in ("**" * 20 + "x", "*a" * 30 + "x", "**/" * 10 + "*a*a*a*a*a*a*x"):
        assert not Glob("includes[0]", pattern).match(path)
    assert Glob("includes[0]", "*a" * 30).match("a" * 60)


def test_a_pattern_too_long_is_refused() -> None:
    with pytest.raises(SourceError, match=f"longer than {MAX_PATTERN_CHARS}"):
        Glob("includes[0]", "a" * (MAX_PATTERN_CHARS + 1))


def test_every_two_wildcard_combination_agrees() -> None:
    pieces = ["*", "**", "**/", "?", "a", "/", "[ab]"]
    for combo in itertools.product(pieces, repeat=3):
        glob = Glob("includes[0]", "".join(combo))
        for path in ("a", "ab", "a/b", "b/a/", "aa/bb/a", "/", ""):
            assert _walk(glob._tokens, path) == (glob._regex.match(path) is not None), combo
