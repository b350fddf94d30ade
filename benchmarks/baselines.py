"""The same predictor and batches run without the orchestrator, for comparison.

``run_pool`` uses ``multiprocessing.Pool(4)`` (the predictor built once per process in an
initializer); ``run_ray`` uses Ray Data ``map_batches`` with an actor pool of 4, one row
per batch. Both time the whole run with start-up included (from before the pool or Ray
starts until every result is in hand) and report the steady-state window from the
predictor's own stamps: ``max(t_end) - min(t_start)``.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

PREDICTOR_PATH = Path(__file__).resolve().parent / "apis" / "bench" / "predictor.py"
PROCESSES = 4

# The predictor of this Pool process, built by ``_init_pool_process``.
_pool_predictor: Any = None


@dataclass(frozen=True)
class BaselineRun:
    """One baseline's timings, in seconds."""

    wall_s: float  # start-up included
    steady_s: float  # max(t_end) - min(t_start) over every batch


def load_predictor_module() -> ModuleType:
    """Import the benchmark API's ``predictor.py`` from its path."""
    spec = importlib.util.spec_from_file_location("bench_predictor", PREDICTOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_predictor(config: dict[str, Any]) -> Any:
    """Build the benchmark predictor as a worker does: ``PythonPredictor(config, job_spec)``."""
    return load_predictor_module().PythonPredictor(config, {"job_id": "baseline"})


def steady_window(stamps: list[list[float]]) -> float:
    """Return ``max(t_end) - min(t_start)`` over ``[t_start, t_end]`` stamps."""
    return max(end for _, end in stamps) - min(start for start, _ in stamps)


def _init_pool_process(config: dict[str, Any]) -> None:
    """Build this Pool process's predictor once.

    The forked process gets default signal handling back (the parent turns SIGTERM into
    KeyboardInterrupt) and ignores Ctrl-C: the parent handles it and ends the pool.
    """
    global _pool_predictor
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _pool_predictor = make_predictor(config)


def _pool_batch(job: tuple[int, list[Any]]) -> list[float]:
    """Run one batch on this Pool process's predictor."""
    index, payload = job
    return list(_pool_predictor.predict(payload, str(index)))


def run_pool(batches: list[list[Any]], config: dict[str, Any]) -> BaselineRun:
    """Run every batch through ``multiprocessing.Pool(4)``, one batch per task."""
    started = time.perf_counter()
    with multiprocessing.Pool(PROCESSES, _init_pool_process, (config,)) as pool:
        stamps = pool.map(_pool_batch, list(enumerate(batches)), chunksize=1)
        wall = time.perf_counter() - started
    return BaselineRun(wall, steady_window(stamps))


def ray_version() -> str | None:
    """Return the installed Ray's version, or None when Ray cannot be imported."""
    try:
        import ray
    except ImportError:
        return None
    return str(ray.__version__)


class _RayPredictor:
    """A Ray Data callable class around the benchmark predictor (one actor each)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.predictor = make_predictor(config)
        self.calls = 0

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[float]]:
        """Predict one batch of rows; return its stamps as columns."""
        self.calls += 1
        t_start, t_end = self.predictor.predict(list(batch["item"]), str(self.calls))
        return {"t_start": [t_start], "t_end": [t_end]}


def run_ray(batches: list[list[Any]], config: dict[str, Any]) -> BaselineRun:
    """Run every batch (one row each) through Ray Data ``map_batches`` on 4 actors.

    Raises:
        ImportError: Ray is not installed.
    """
    import ray
    import ray.data

    rows = [{"item": batch[0]} for batch in batches]
    started = time.perf_counter()
    ray.init(
        num_cpus=PROCESSES,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        # Actors unpickle _RayPredictor by reference: they need this directory on their path.
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent)}},
    )
    try:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ray.data.DataContext.get_current().enable_progress_bars = False
        dataset = ray.data.from_items(rows).map_batches(
            _RayPredictor,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=PROCESSES),
            fn_constructor_kwargs={"config": config},
        )
        out = dataset.take_all()
        wall = time.perf_counter() - started
    finally:
        ray.shutdown()
    return BaselineRun(wall, steady_window([[r["t_start"], r["t_end"]] for r in out]))
