"""Saying what deleting an API takes with it, and what prune removed: counts and sizes.

Shared by the CLI and the terminal UI, so both say the same.
"""

from __future__ import annotations

from cortex_tui.client import Json


def size(n: int) -> str:
    """Return a byte count for people: ``0 B``, ``812 B``, ``4.1 kB``, ``1.2 MB``, ``3.0 GB``."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _jobs(n: int) -> str:
    return f"{n} job{'' if n == 1 else 's'}"


def deletion(usage: Json, purge: bool) -> list[str]:
    """Return what deleting the API of ``usage`` (the server's usage document) does, a
    sentence a line."""
    name, jobs, running = usage["api_name"], int(usage["jobs"]), int(usage["running_jobs"])
    data = f"{size(usage['data_bytes'])} of items and results, {size(usage['log_bytes'])} of logs"
    lines = []
    if usage.get("deleted_time"):
        lines.append(f"{name} was deleted at {usage['deleted_time']}; its jobs were kept.")
    if running:
        lines.append(f"Its {_jobs(running)} running will be stopped.")
    if not jobs:
        lines.append("It has no jobs.")
    elif purge:
        lines.append(f"Its {_jobs(jobs)} go with it: {data}.")
    else:
        lines.append(
            f"Its {_jobs(jobs)} ({data}) {'stays' if jobs == 1 else 'stay'} readable;"
            f" `cortex-tui prune` or `delete {name} --purge` removes"
            f" {'it' if jobs == 1 else 'them'}."
        )
    if usage["snapshot_bytes"]:
        lines.append(f"Its snapshots ({size(usage['snapshot_bytes'])}) go at the next prune.")
    return lines


def prune_report(report: Json) -> list[str]:
    """Return what a prune removed (or, for a dry run, would remove), a line a kind."""
    jobs, images, db = report["jobs"], report["images"], report["database"]
    per_api = ", ".join(f"{api} {n}" for api, n in sorted(jobs["by_api"].items()))
    lines = [
        f"jobs: {_jobs(jobs['count'])} that ended" + (f" ({per_api})" if per_api else "")
        + f": {size(jobs['data_bytes'])} of items and results, {size(jobs['log_bytes'])} of logs"
    ]  # fmt: skip
    if report["orphan_log_bytes"]:
        lines.append(f"logs of jobs no longer recorded: {size(report['orphan_log_bytes'])}")
    snapshots = report["snapshots"]
    lines.append(
        f"snapshots no API version in use needs: {len(snapshots)}"
        + (f", {size(sum(s['bytes'] for s in snapshots))}" if snapshots else "")
    )
    lines.extend(_images(images))
    if report["dry_run"]:
        lines.append(f"database: {size(db['bytes_before'])} now; compacting frees about"
                     f" {size(db['reclaimed_bytes'])}")  # fmt: skip
    elif db.get("compacted", True):
        lines.append(f"database: {size(db['bytes_before'])} -> {size(db['bytes_after'])}")
    else:
        lines.append(
            f"database: not compacted: {db.get('error')}; what is listed above was removed"
            " all the same (free some disk, then prune again to compact)"
        )
    # An image's bytes are an estimate (layers only removed images share are not counted).
    estimated = report["dry_run"] or bool(report["images"]["removed"])
    verb = ("would reclaim" if report["dry_run"] else "reclaimed") + (" about" if estimated else "")
    lines.append(f"{verb} {size(report['reclaimed_bytes'])} in all")
    return lines


def _images(images: Json) -> list[str]:
    lines = [f"image {i['image']} (about {size(i['bytes'])})" for i in images["removed"]]
    lines += [f"image {i['image']} kept: {i['why']}" for i in images["kept"]]
    if images["skipped"]:
        lines.append(f"images not looked at: {images['skipped']}")
    return lines
