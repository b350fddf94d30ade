"""Units of cortex.yaml: memory quantities and CPU amounts, read and written back.

``parse_quantity`` reads ``"512Mi"`` as bytes, ``format_bytes`` writes bytes as the
shortest exact quantity, and ``parse_cpu`` reads ``"500m"`` as cores. Their errors read
``<where>: <what is wrong>``, where names the file, API and key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal

from orchestrator.errors import ApiSpecError

_CPU_RE = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(m?)$")
_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)([A-Za-z]*)$")
_MEM_UNITS = {"Ti": 2**40, "Gi": 2**30, "Mi": 2**20, "Ki": 2**10, "T": 10**12, "G": 10**9,
              "M": 10**6, "K": 10**3, "": 1}  # fmt: skip
_MEM_HINT = 'use bytes or a number with Ki, Mi, Gi, Ti or K, M, G, T, e.g. "512Mi"'


def parse_quantity(value: object, *, where: str) -> int:
    """Return a memory quantity (``1048576``, ``"64Mi"``, ``"1G"``) in bytes, rounded up.

    Args:
        value: An integer number of bytes, or a string with an optional unit suffix.
        where: The message prefix naming the file, API and key.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str):
        match = _MEM_RE.match(value.strip())
        if not match or match.group(2) not in _MEM_UNITS:
            raise ApiSpecError(f'{where}: "{value}" is not a memory quantity: {_MEM_HINT}')
        exact = Decimal(match.group(1)) * _MEM_UNITS[match.group(2)]
        n = int(exact.to_integral_value(rounding=ROUND_CEILING))
    else:
        raise ApiSpecError(
            f"{where}: expected a memory quantity, got {describe(value)}: {_MEM_HINT}"
        )
    if n <= 0:
        raise ApiSpecError(f"{where}: must be more than 0 bytes, got {describe(value)}")
    return n


def parse_cpu(value: object, *, where: str) -> float:
    """Return a CPU amount (``1``, ``0.5``, ``"500m"``) in cores.

    Args:
        value: A number of cores, or a string of cores or millicores (``"500m"``).
        where: The message prefix naming the file, API and key.
    """
    cores: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        cores = float(value)
    elif isinstance(value, str) and (match := _CPU_RE.match(value.strip())):
        cores = float(match.group(1)) / (1000 if match.group(2) else 1)
    if cores is None or not math.isfinite(cores):
        expected = 'expected a number of cores such as 1, 0.5 or "500m"'
        raise ApiSpecError(f"{where}: {expected}, got {describe(value)}")
    if cores <= 0:
        raise ApiSpecError(f"{where}: must be more than 0 cores, got {describe(value)}")
    return cores


def format_bytes(n: int) -> str:
    """Return ``n`` bytes as the shortest exact quantity (``"64Mi"``, ``"200M"``, ``"1500"``).

    Ties go to binary units; :func:`parse_quantity` reads the result back as ``n``.
    """
    if n <= 0:
        return str(n)
    exact = [f"{n // factor}{unit}" for unit, factor in _MEM_UNITS.items() if n % factor == 0]
    return min(exact, key=len)


def describe(value: object) -> str:
    """Return ``value`` as the user would write it in YAML, for messages."""
    if isinstance(value, str):
        # Never echo much of a file: a config_file that is not YAML parses as one string.
        if len(value) > 60 or "\n" in value:
            return f"a string of {len(value)} characters"
        return f'"{value}"'
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, Mapping | list):
        return "a mapping" if isinstance(value, Mapping) else "a list"
    if isinstance(value, int | float):
        return repr(value)
    return f"{value} ({type(value).__name__})"
