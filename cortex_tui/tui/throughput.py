"""Throughput measured client-side from successive polls of a job's batch counts."""

from __future__ import annotations

from collections import deque
from itertools import pairwise

WINDOW_S = 300.0  # what the sparkline covers
RECENT_S = 60.0  # what the ETA is based on


class Throughput:
    """Batches finished per second, from ``(time, finished batches)`` samples.

    The ETA comes from the recent rate (the last ``recent_s`` seconds), not the average
    since the start, so it follows a job that speeds up or slows down.
    """

    def __init__(self, window_s: float = WINDOW_S, recent_s: float = RECENT_S) -> None:
        self.window_s = window_s
        self.recent_s = recent_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, finished: int) -> None:
        """Record that ``finished`` batches were done (succeeded or failed) at ``now``."""
        if self._samples and (finished < self._samples[-1][1] or now <= self._samples[-1][0]):
            if finished < self._samples[-1][1]:
                self._samples.clear()  # a different job, or counts went back: start over
            else:
                return
        self._samples.append((now, finished))
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()

    def rates(self) -> list[float]:
        """Return the batches per second between each pair of successive samples."""
        return [
            (b_done - a_done) / (b_t - a_t)
            for (a_t, a_done), (b_t, b_done) in pairwise(self._samples)
        ]

    def series(self, now: float, buckets: int) -> list[float]:
        """Return the rate over the last ``window_s`` seconds in ``buckets`` equal slices.

        The oldest slice comes first; a slice without a measurement is 0, so the time axis
        is fixed and a stall shows as a gap.
        """
        span = self.window_s / max(1, buckets)
        totals = [0.0] * buckets
        counts = [0] * buckets
        for (a_t, a_done), (b_t, b_done) in pairwise(self._samples):
            index = buckets - 1 - int((now - b_t) // span)
            if 0 <= index < buckets:
                totals[index] += (b_done - a_done) / (b_t - a_t)
                counts[index] += 1
        return [
            total / count if count else 0.0 for total, count in zip(totals, counts, strict=True)
        ]

    def recent_rate(self) -> float | None:
        """Return batches per second over the last ``recent_s`` seconds, or None if unknown."""
        if len(self._samples) < 2:
            return None
        last_t, last_done = self._samples[-1]
        first_t, first_done = next(
            (t, done) for t, done in self._samples if t >= last_t - self.recent_s
        )
        if last_t - first_t <= 0:
            first_t, first_done = self._samples[-2]
        return (last_done - first_done) / (last_t - first_t)

    def eta(self, remaining: int) -> float | None:
        """Return the seconds until ``remaining`` batches are done at the recent rate."""
        if remaining <= 0:
            return 0.0
        rate = self.recent_rate()
        if not rate:
            return None
        return remaining / rate
