"""Samples of the GPUs a worker holds: utilisation and memory, for its heartbeat to carry.

NVML (the ``nvidia-ml-py`` package, imported as ``pynvml``) is used when it can be
imported and initialised; otherwise ``nvidia-smi --query-gpu`` is run. Both list every
device the worker can see; the samples keep those ``CUDA_VISIBLE_DEVICES`` names (by
index or UUID, as the process backend hands them), or all of them when it is unset (a
container sees only the devices it was given). Nothing here is needed to run a job: a
worker whose tools fail says so once and sends no samples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from runtime.protocol import GpuKey

SMI_COMMAND = (
    "nvidia-smi",
    "--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total",
    "--format=csv,noheader,nounits",
)
_MIB = 1 << 20

Sample = dict[str, Any]


def parse_smi(text: str) -> list[Sample]:
    """Return the samples in ``nvidia-smi``'s CSV (``SMI_COMMAND``; memory in MiB).

    A field the device does not report (``[N/A]``, ``[Not Supported]``) is None; a line
    that is not five fields with an integer index is skipped.
    """
    samples: list[Sample] = []
    for line in text.splitlines():
        fields = [part.strip() for part in line.split(",")]
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        index, uuid, utilization, used, total = fields
        samples.append(
            {
                GpuKey.INDEX: int(index),
                GpuKey.UUID: uuid,
                GpuKey.UTILIZATION: _number(utilization),
                GpuKey.MEMORY_USED: _mib(used),
                GpuKey.MEMORY_TOTAL: _mib(total),
            }
        )
    return samples


def held(samples: list[Sample], visible: str | None) -> list[Sample]:
    """Return the samples of the devices ``visible`` (``CUDA_VISIBLE_DEVICES``) names.

    Entries are indices or UUIDs (a UUID's unique prefix is enough, as CUDA allows);
    unset keeps every device, and an empty value none.
    """
    if visible is None:
        return samples
    names = [name.strip() for name in visible.split(",") if name.strip()]
    return [s for s in samples if any(_names(s, name) for name in names)]


class GpuSampler:
    """Samples the devices this worker holds, by NVML or else ``nvidia-smi``."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._visible = environ.get("CUDA_VISIBLE_DEVICES")
        self._nvml: Any = _open_nvml()
        self._smi = shutil.which("nvidia-smi")
        self._broken = self._nvml is None and self._smi is None
        if self._broken:
            print("gpu samples: neither NVML nor nvidia-smi is here; none sent", file=sys.stderr)

    @property
    def source(self) -> str:
        """Say where samples come from: ``nvml``, ``nvidia-smi`` or ``none``."""
        if self._broken:
            return "none"
        return "nvml" if self._nvml is not None else "nvidia-smi"

    def sample(self) -> list[Sample]:
        """Return a sample of each held device ([] when sampling failed; said once)."""
        if self._broken:
            return []
        try:
            every = _nvml_samples(self._nvml) if self._nvml is not None else self._smi_samples()
        except Exception as e:  # a driver gone mid-job must not stop the heartbeat
            print(f"gpu samples: {type(e).__name__}: {e}; none sent from now on", file=sys.stderr)
            self._broken = True
            return []
        return held(every, self._visible)

    def _smi_samples(self) -> list[Sample]:
        assert self._smi is not None
        done = subprocess.run(
            [self._smi, *SMI_COMMAND[1:]], capture_output=True, text=True, timeout=10, check=True
        )
        return parse_smi(done.stdout)


def _open_nvml() -> Any:
    """Return the initialised ``pynvml`` module, or None where it is absent or fails."""
    try:
        import pynvml  # nvidia-ml-py, optional

        pynvml.nvmlInit()
    except Exception:
        return None
    return pynvml


def _nvml_samples(nvml: Any) -> list[Sample]:
    samples: list[Sample] = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        samples.append(
            {
                GpuKey.INDEX: index,
                GpuKey.UUID: uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                GpuKey.UTILIZATION: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                GpuKey.MEMORY_USED: int(memory.used),
                GpuKey.MEMORY_TOTAL: int(memory.total),
            }
        )
    return samples


def _names(sample: Sample, name: str) -> bool:
    if name.isdigit():
        return bool(int(name) == sample[GpuKey.INDEX])
    return bool(name) and str(sample[GpuKey.UUID]).startswith(name)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _mib(text: str) -> int | None:
    value = _number(text)
    return None if value is None else int(value * _MIB)
