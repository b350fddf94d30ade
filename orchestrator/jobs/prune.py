"""Reclaiming disk: ended jobs with their batches, results and logs; snapshots and images
no API version in use needs; the database's free pages.

A job in progress, or one whose workers are still stopping, is never touched, nor is the
parent of a retry that is kept (they go together); nor is the current version of a
deployed API, or a snapshot a deploy is writing. With
``dry_run`` every step only measures what it would remove.
"""

from __future__ import annotations

import errno
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from orchestrator.backends import Backend
from orchestrator.context import Context
from orchestrator.disk import remove_tree, tree_bytes
from orchestrator.errors import OrchestratorError
from orchestrator.store import api_queries, prune_queries

#: Jobs removed per write transaction (running jobs' writes wait for each).
_JOBS_PER_WRITE = 20
_ID = re.compile(r"[0-9a-f]{16}")
#: A log folder changed more recently than this is never taken for an orphan.
_ORPHAN_MIN_AGE_S = 60.0


def prune(
    ctx: Context, older_than_s: float | None, dry_run: bool, ended_before: float | None = None
) -> dict[str, Any]:
    """Remove (or, with ``dry_run``, measure) what nothing needs; return what it was.

    Args:
        ctx: The orchestrator.
        older_than_s: Only jobs that ended at least this many seconds ago (None: any).
        dry_run: Change nothing.
        ended_before: Only jobs that ended before this epoch time: a dry run's
            ``ended_before``, so that the prune removes no job the preview did not show.
            With ``older_than_s`` too, the earlier of the two bounds holds.

    The answer's ``ended_before`` is the bound used (now, when neither is given).
    """
    bounds = [ctx.clock() if older_than_s is None else ctx.clock() - older_than_s]
    cutoff = min(bounds + ([] if ended_before is None else [ended_before]))
    jobs = _jobs(ctx, cutoff, dry_run)
    orphan_logs = _orphan_logs(ctx, set(jobs.pop("ids")), dry_run)
    snapshots = _snapshots(ctx, dry_run)
    images = _images(ctx, dry_run)
    database = _database(ctx, jobs["data_bytes"], dry_run)
    reclaimed = (
        jobs["log_bytes"]
        + orphan_logs
        + sum(s["bytes"] for s in snapshots)
        + sum(i["bytes"] for i in images["removed"])
        + database["reclaimed_bytes"]
    )
    return {
        "dry_run": dry_run,
        "older_than_s": older_than_s,
        "ended_before": cutoff,
        "jobs": jobs,
        "orphan_log_bytes": orphan_logs,
        "snapshots": snapshots,
        "images": images,
        "database": database,
        "reclaimed_bytes": reclaimed,
    }


def _jobs(ctx: Context, ended_before: float, dry_run: bool) -> dict[str, Any]:
    """Remove the ended jobs (that ended before ``ended_before``) with their batches and logs."""
    with ctx.store.read() as conn:
        found = prune_queries.removable_jobs(conn, ended_before)
        data = prune_queries.data_bytes(conn, [job_id for job_id, _ in found]) if dry_run else 0
    if dry_run:
        log_bytes = sum(tree_bytes(ctx.job_log_dir(job_id)) for job_id, _ in found)
    else:
        found, data, log_bytes = remove_jobs(ctx, found, ended_before)
    return {
        "ids": [job_id for job_id, _ in found],
        "count": len(found),
        "by_api": dict(Counter(api_name for _, api_name in found)),
        "data_bytes": data,
        "log_bytes": log_bytes,
    }


def remove_jobs(
    ctx: Context, found: list[tuple[str, str]], ended_before: float | None = None
) -> tuple[list[tuple[str, str]], int, int]:
    """Remove jobs ``removable_jobs`` found, with their records and logs.

    Each write re-checks its jobs (a retry of one may have been submitted since they were
    found) and goes newest first, so a retry goes before its parent. A deleted API left
    without jobs is forgotten.

    Returns:
        The ``(job_id, api_name)`` removed, the bytes their batches held, and those of
        their logs.
    """
    removed: list[tuple[str, str]] = []
    data = 0
    newest_first = [job_id for job_id, _ in reversed(found)]
    for start in range(0, len(newest_first), _JOBS_PER_WRITE):
        chunk = newest_first[start : start + _JOBS_PER_WRITE]
        with ctx.store.write() as conn:
            still = prune_queries.removable_jobs(conn, ended_before, among=chunk)
            ids = [job_id for job_id, _ in still]
            data += prune_queries.data_bytes(conn, ids)
            prune_queries.delete_jobs(conn, ids)
        removed.extend(still)
    with ctx.store.write() as conn:
        prune_queries.forget_orphan_workers(conn)
        api_queries.forget_deleted_without_jobs(conn)
    log_bytes = sum(remove_tree(ctx.job_log_dir(job_id)) for job_id, _ in removed)
    return removed[::-1], data, log_bytes


def _orphan_logs(ctx: Context, removed: set[str], dry_run: bool) -> int:
    """Remove the log folders of jobs the store no longer knows (purged, or lost).

    The folders are listed before the known ids are read: a job's row is written before
    its folder, so a job submitted meanwhile is among the ids. A folder changed in the
    last minute is left for the next prune all the same.
    """
    logs_dir = ctx.settings.logs_dir
    if not logs_dir.is_dir():
        return 0
    settled = time.time() - _ORPHAN_MIN_AGE_S
    folders = [
        folder
        for folder in logs_dir.iterdir()
        if folder.is_dir() and _ID.fullmatch(folder.name) and _changed(folder) < settled
    ]
    with ctx.store.read() as conn:
        known = prune_queries.known_job_ids(conn) | removed  # those are counted with their job
    total = 0
    for folder in folders:
        if folder.name not in known:
            total += tree_bytes(folder) if dry_run else remove_tree(folder)
    return total


def _changed(path: Path) -> float:
    """Return when ``path`` last changed (now, if it is gone: it is then left alone)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _snapshots(ctx: Context, dry_run: bool) -> list[dict[str, Any]]:
    """Remove the API snapshots no deployed API's version and no live job runs from.

    Each API's folder is decided under the lock deploys take, with the versions in use read
    inside it: a deploy either is under way (its snapshot is in ``ctx.deploying``) or has
    saved its version, so a snapshot just deployed is never taken.
    """
    apis_dir = ctx.settings.apis_dir
    if not apis_dir.is_dir():
        return []
    removed: list[dict[str, Any]] = []
    for api_dir in sorted(p for p in apis_dir.iterdir() if p.is_dir()):
        with ctx.snapshot_lock:
            with ctx.store.read() as conn:
                in_use = {Path(d).resolve() for _, d, _ in prune_queries.versions_in_use(conn)}
            for version in sorted(p for p in api_dir.iterdir() if _ID.fullmatch(p.name)):
                if version.resolve() in in_use or version in ctx.deploying:
                    continue
                size = tree_bytes(version) if dry_run else remove_tree(version)
                removed.append({"api_name": api_dir.name, "api_id": version.name, "bytes": size})
            if not dry_run:
                _remove_if_empty(api_dir)
    return removed


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it is empty (a deploy may be filling it: then it stays)."""
    try:
        folder.rmdir()
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            raise


def _images(ctx: Context, dry_run: bool) -> dict[str, Any]:
    """Remove the images this home built for API versions nothing runs from any more.

    Each image's ``bytes`` are its backend's figure for what removing it frees (docker:
    the layers no other image shares), read before removing: a dry run and the prune
    after it say the same.
    """
    report: dict[str, Any] = {"removed": [], "kept": [], "skipped": None}
    backends = _image_backends(ctx, report)
    if not backends:
        return report
    with ctx.store.read() as conn:
        in_use = [(n, spec, Path(d)) for n, d, spec in prune_queries.versions_in_use(conn)]
    for backend in backends:
        try:
            unused = backend.unused_images(in_use)
        except OrchestratorError as e:
            report["skipped"] = f"{backend.name}: {e.message}"
            continue
        for image in unused:
            why = None if dry_run else backend.remove_image(image["image"])
            if why is None:
                report["removed"].append(image)
            else:
                report["kept"].append({**image, "why": why})
    return report


def _image_backends(ctx: Context, report: dict[str, Any]) -> list[Backend]:
    """Return the loaded backends, with docker's if this home ever built an API image."""
    backends = {backend.name: backend for backend in ctx.loaded_backends()}
    built = ctx.settings.builds_dir
    if "docker" not in backends and built.is_dir() and any(built.glob("*/*.log")):
        try:
            backends["docker"] = ctx.backend("docker")
        except OrchestratorError as e:
            report["skipped"] = f"docker: {e.message}"
    return list(backends.values())


def _database(ctx: Context, data_bytes: int, dry_run: bool) -> dict[str, Any]:
    """Compact the database and empty its write-ahead log; say how many bytes that gave.

    A dry run estimates it: the files' size now less the pages in use, less the removed
    jobs' ``data_bytes``. A compaction that fails (a disk too full for VACUUM's copy) is
    reported with SQLite's reason; what was removed before it stays removed.
    """
    files = [ctx.settings.db_path, ctx.settings.db_path.with_name("cortex.db-wal")]
    before = sum(f.stat().st_size for f in files if f.exists())
    if dry_run:
        with ctx.store.read() as conn:
            used = prune_queries.used_bytes(conn)
        return {"bytes_before": before, "reclaimed_bytes": max(before - used + data_bytes, 0)}
    error = ctx.store.compact()
    after = sum(f.stat().st_size for f in files if f.exists())
    report: dict[str, Any] = {"bytes_before": before, "bytes_after": after}
    report["compacted"] = error is None
    if error is not None:
        report["error"] = error
    return report | {"reclaimed_bytes": max(before - after, 0)}
