"""Times for people: the server's ISO timestamps as local times, durations and ages."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: str | None) -> float | None:
    """Return the epoch seconds of an ISO timestamp such as ``2026-11-27T14:03:05.123Z``."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def local_time(value: str | None) -> str:
    """Return an ISO timestamp as local time, ``2026-11-27 14:03:05``, or ``-``."""
    epoch = parse_time(value)
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """Return a duration with its two largest units: ``1h 2m``, ``3m 4s``, ``5s``."""
    if seconds is None:
        return "-"
    if 0 < seconds < 1:
        return "<1s"
    total = int(max(0.0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(units) > 1 and units[0][0] == 0:
        units.pop(0)
    shown = [f"{value}{unit}" for value, unit in units[:2]]
    if len(shown) == 2 and units[1][0] == 0:
        shown.pop()
    return " ".join(shown)


def format_seconds(seconds: float | None) -> str:
    """Return a short time such as a batch takes: ``850ms``, ``2.4s``, ``3m 4s``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.001 else f"{seconds * 1000:.2f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return format_duration(seconds)


def format_age(value: str | None, now: float) -> str:
    """Return how long ago an ISO timestamp was: ``3s ago``, ``5m ago``, ``2h ago``."""
    epoch = parse_time(value)
    if epoch is None:
        return "-"
    elapsed = now - epoch
    if elapsed < 1:
        return "just now"
    return format_duration(elapsed).split(" ")[0] + " ago"


def job_duration(start: str | None, end: str | None, now: float) -> float | None:
    """Return how long a job ran: from start to end, or to ``now`` while it runs."""
    started = parse_time(start)
    if started is None:
        return None
    ended = parse_time(end)
    return (now if ended is None else ended) - started


def last_update(api: dict[str, Any], now: float) -> str:
    """Return when an API last did something: ``now`` while its latest job runs, else when
    that job ended, else when the API was deployed."""
    job = api.get("latest_job") or {}
    if job.get("status") in ("status_enqueuing", "status_running"):
        return "now"
    return format_age(job.get("end_time") or api.get("updated_time"), now)
