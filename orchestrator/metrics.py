"""The orchestrator's own instruments, and the Prometheus text format they are read in.

Everything the store counts (jobs, batches, workers, GPU samples) is read from it at each
scrape (``orchestrator.store.metrics_queries``); what only this process sees is kept here:
the latency histograms observed as acks are recorded, and the requests in flight. An
observation is a bisect and two additions under a lock, cheap beside the ack it follows.

The text is version 0.0.4 of the exposition format: ``# HELP`` and ``# TYPE`` lines, then
one ``name{label="value"} number`` line per sample.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Upper bounds (seconds) of the latency histograms' buckets: a fast predictor's
#: milliseconds up to a slow batch's hour.
SECONDS_BUCKETS = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
#: The media type of the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Mapping[str, str]
Sample = tuple[Labels, float]


class Histogram:
    """Counts of observations per bucket (cumulated only when read), their sum and count."""

    def __init__(self, bounds: Iterable[float] = SECONDS_BUCKETS) -> None:
        self.bounds = tuple(sorted(bounds))
        self._counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf's own
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose bound is at least it."""
        index = bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def read(self) -> tuple[list[tuple[float, int]], float, int]:
        """Return the cumulative ``(upper bound, count)`` pairs (``+Inf`` last), sum and count."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative, total, running


#: How a ``predict`` call on a batch ended: the ``outcome`` label of the latency histograms.
OUTCOMES = ("succeeded", "failed")


def _by_outcome() -> dict[str, Histogram]:
    return {outcome: Histogram() for outcome in OUTCOMES}


@dataclass
class Telemetry:
    """What this orchestrator process measures itself (reset when it restarts)."""

    lease_to_ack: dict[str, Histogram] = field(default_factory=_by_outcome)
    predict: dict[str, Histogram] = field(default_factory=_by_outcome)
    requests_in_flight: int = 0

    def observe_ack(self, outcome: str, lease_to_ack_s: float | None, predict_s: float) -> None:
        """Observe an ack of one ``predict`` call (``outcome``: one of ``OUTCOMES``): from
        its batch's lease to the ack, and how long predict ran."""
        if lease_to_ack_s is not None:
            self.lease_to_ack[outcome].observe(lease_to_ack_s)
        self.predict[outcome].observe(predict_s)


class Exposition:
    """The text of one scrape, written family by family."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        """Write a ``gauge`` or ``counter`` family (a counter's name ends in ``_total``)."""
        self._header(name, kind, help_text)
        self._lines.extend(_sample(name, labels, value) for labels, value in samples)

    def family_of_labelled(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]
    ) -> None:
        """Write a family whose samples' labels are already written (``label_text``): a
        scrape writes each job's labels once for all its families."""
        self._header(name, kind, help_text)
        self._lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

    def histogram(
        self, name: str, help_text: str, series: Iterable[tuple[Labels, Histogram]]
    ) -> None:
        """Write a histogram family: each series' buckets, ``_sum`` and ``_count``."""
        self._header(name, "histogram", help_text)
        for labels, histogram in series:
            buckets, total, count = histogram.read()
            for bound, running in buckets:
                bucket = {**labels, "le": _number(bound)}
                self._lines.append(_sample(f"{name}_bucket", bucket, running))
            self._lines.append(_sample(f"{name}_sum", labels, total))
            self._lines.append(_sample(f"{name}_count", labels, count))

    def text(self) -> str:
        """Return the whole exposition, ending with a newline."""
        return "\n".join(self._lines) + "\n"

    def _header(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")


def label_text(labels: Labels) -> str:
    """Return ``{key="value",...}`` with the values escaped ("" for no labels)."""
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape_label(str(v))}"' for key, v in labels.items()) + "}"


def _sample(name: str, labels: Labels, value: float) -> str:
    return f"{name}{label_text(labels)} {_number(value)}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _escape_label(value: str) -> str:
    if "\\" not in value and '"' not in value and "\n" not in value:
        return value
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def resident_memory_bytes() -> int:
    """Return this process's resident set size (Linux: ``/proc/self/statm``; elsewhere the
    peak, which is what ``getrusage`` knows)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
