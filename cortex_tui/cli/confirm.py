"""Asking before a command removes something: y/N on a terminal, ``--yes`` elsewhere."""

from __future__ import annotations

import sys


def confirmed(question: str, what: str) -> bool:
    """Ask ``question`` [y/N] on the terminal; without one, refuse and say so.

    Args:
        question: What to ask, e.g. ``delete iris?``.
        what: The command line that ``--yes`` completes, for the refusal's message.
    """
    if not sys.stdin.isatty():
        print(
            f"error: not done: `{what}` asks for confirmation and stdin is not a terminal;"
            f" run `{what} --yes` to go ahead without asking",
            file=sys.stderr,
        )
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("nothing was changed", file=sys.stderr)
    return False
