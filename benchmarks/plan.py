"""What a benchmark run measures, at which sizes, and what it has measured so far."""

from __future__ import annotations

from dataclasses import dataclass, field

import report

Figures = dict[str, float | None]


@dataclass(frozen=True)
class Sizes:
    """How big each section's jobs are."""

    dispatch_batches: int
    dispatch_workers: tuple[int, ...]
    efficiency_batches: int
    submit_items: int
    files_mb: int
    scale_batches: tuple[int, ...]
    status_requests: int
    status_batches: int


FULL = Sizes(
    dispatch_batches=20_000,
    dispatch_workers=(1, 2, 4),
    efficiency_batches=2_000,
    submit_items=100_000,
    files_mb=1_000,
    scale_batches=(1_000, 10_000, 100_000, 1_000_000),
    status_requests=1_000,
    status_batches=400_000,
)
QUICK = Sizes(
    dispatch_batches=2_000,
    dispatch_workers=(1, 2, 4),
    efficiency_batches=400,
    submit_items=100_000,
    files_mb=100,
    scale_batches=(1_000, 10_000, 30_000),
    status_requests=300,
    status_batches=100_000,
)
# For the test suite (hidden --tiny): every section in seconds.
TINY = Sizes(
    dispatch_batches=200,
    dispatch_workers=(1, 2, 4),
    efficiency_batches=40,
    submit_items=2_000,
    files_mb=1,
    scale_batches=(100, 300),
    status_requests=50,
    status_batches=20_000,
)


@dataclass(frozen=True)
class Options:
    """What to run: the sizes, and whether to run the Ray baseline."""

    sizes: Sizes
    use_ray: bool


@dataclass
class Results:
    """Everything measured so far."""

    figures: Figures = field(default_factory=dict)
    scale: list[report.ScalePoint] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
