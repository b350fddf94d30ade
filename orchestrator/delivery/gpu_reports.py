"""The GPU samples a worker's heartbeat carries (``runtime.gpu_samples``), validated whole.

Only the fields of ``runtime.protocol.GpuKey`` are kept, so what the store holds and the
workers route serves has one shape whatever a worker sends.
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.errors import InvalidRequest
from runtime.protocol import GPUS_FIELD, MAX_GPUS, GpuKey

_MAX_BYTES = 2**63 - 1
#: What a GPU's id (``GPU-8f3e...``, ``MIG-...``) may hold: printable ASCII (it becomes a
#: metric label).
_UUID = re.compile(r"[\x20-\x7e]{0,200}")


def parse_gpus(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Return the samples of a heartbeat's body, or None when it carries none.

    Raises:
        InvalidRequest: A sample is not an object of the expected fields (400, naming it).
    """
    samples = body.get(GPUS_FIELD)
    if samples is None:
        return None
    if not isinstance(samples, list) or len(samples) > MAX_GPUS:
        raise InvalidRequest(f"{GPUS_FIELD}: must be a list of at most {MAX_GPUS} samples")
    parsed = [_sample(sample, f"{GPUS_FIELD}[{n}]") for n, sample in enumerate(samples)]
    for key in (GpuKey.INDEX, GpuKey.UUID):
        seen = [sample[key] for sample in parsed]
        if len(set(seen)) < len(seen):
            raise InvalidRequest(f"{GPUS_FIELD}: two samples of one GPU (the same {key})")
    return parsed


def _sample(sample: object, where: str) -> dict[str, Any]:
    if not isinstance(sample, dict):
        raise InvalidRequest(f"{where}: must be an object with {', '.join(GpuKey)}")
    index, uuid = sample.get(GpuKey.INDEX), sample.get(GpuKey.UUID)
    if not _is_number(index, 0, 1_000_000, integer=True):
        raise InvalidRequest(f"{where}.{GpuKey.INDEX}: must be an integer from 0")
    if not isinstance(uuid, str) or not _UUID.fullmatch(uuid):
        raise InvalidRequest(
            f"{where}.{GpuKey.UUID}: must be at most 200 printable ASCII characters (a GPU's id)"
        )
    limits = {
        GpuKey.UTILIZATION: (100, False),
        GpuKey.MEMORY_USED: (_MAX_BYTES, True),
        GpuKey.MEMORY_TOTAL: (_MAX_BYTES, True),
    }
    for key, (most, integer) in limits.items():
        value = sample.get(key)
        if value is not None and not _is_number(value, 0, most, integer=integer):
            kind = "an integer" if integer else "a number"
            raise InvalidRequest(f"{where}.{key}: must be null or {kind} from 0 to {most}")
    return {key.value: sample.get(key) for key in GpuKey}


def _is_number(value: object, least: float, most: float, *, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if integer and not isinstance(value, int):
        return False
    return least <= value <= most
