"""Copying each worker's CloudWatch log stream into its log file, as the other backends write it.

One thread copies every followed worker's new events every few seconds. The stream's next
token is kept beside the log file (``<wN>.log.cursor``), so a restarted orchestrator goes
on from there and never writes a line twice.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from orchestrator.aws import Clients, Names, error_code

log = logging.getLogger(__name__)

#: How often new log events are copied.
COPY_EVERY_S = 2.0
#: Where AWS Batch writes when a job definition names no log group (and where moto does).
DEFAULT_GROUP = "/aws/batch/job"


class LogCopier:
    """Follows workers' log streams until their Batch jobs end and the last events are in."""

    def __init__(self, clients: Clients, names: Names) -> None:
        self.clients, self.names = clients, names
        self._followed: dict[str, dict[str, Any]] = {}  # batch job id -> handle
        self._streams: dict[str, tuple[str, str]] = {}  # batch job id -> (group, stream)
        self._finishing: set[str] = set()
        self._copying: dict[str, threading.Lock] = {}  # batch job id -> its copy's lock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, handle: dict[str, Any]) -> None:
        """Copy this worker's stream from now on."""
        with self._lock:
            self._followed.setdefault(str(handle["batch_job_id"]), handle)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="aws-logs", daemon=True)
                self._thread.start()

    def finish(self, handle: dict[str, Any]) -> None:
        """Copy what is left of an ended worker's stream, then stop following it."""
        job = str(handle["batch_job_id"])
        with self._lock:
            if job in self._finishing:
                return
            self._finishing.add(job)
            self._followed.setdefault(job, handle)
        self._copy(job, handle)
        with self._lock:
            self._followed.pop(job, None)

    def close(self) -> None:
        """Stop the copying thread."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(COPY_EVERY_S):
            with self._lock:
                followed = list(self._followed.items())
            for job, handle in followed:
                try:
                    self._copy(job, handle)
                except Exception as e:  # the next round tries again
                    log.debug("copying the log of %s: %s", job, e)

    def _copy(self, job: str, handle: dict[str, Any]) -> None:
        """Append the stream's new events to the worker's log file (one copier at a time)."""
        with self._lock:
            lock = self._copying.setdefault(job, threading.Lock())
        with lock:
            self._copy_new(job, handle)

    def _copy_new(self, job: str, handle: dict[str, Any]) -> None:
        where = self._stream(job)
        if where is None:
            return
        group, stream = where
        path = Path(handle["log_path"])
        cursor_path = path.with_name(path.name + ".cursor")
        token = cursor_path.read_text().strip() if cursor_path.exists() else None
        logs = self.clients("logs")
        while True:
            request: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream,
                "startFromHead": True,
            }
            if token:
                request["nextToken"] = token
            try:
                answer = logs.get_log_events(**request)
            except Exception as e:
                if error_code(e) == "ResourceNotFoundException":
                    return  # no event yet
                raise
            events = answer.get("events", [])
            if events:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as f:
                    f.writelines(str(event["message"]).rstrip("\n") + "\n" for event in events)
            new_token = answer.get("nextForwardToken")
            if not new_token or new_token == token:
                return
            token = new_token
            cursor_path.write_text(token)
            if not events:
                return

    def _stream(self, job: str) -> tuple[str, str] | None:
        """Return the worker's log group and stream, once Batch has named the stream."""
        if job in self._streams:
            return self._streams[job]
        jobs = self.clients("batch").describe_jobs(jobs=[job]).get("jobs", [])
        if not jobs:
            return None
        container = jobs[0].get("container") or {}
        stream = container.get("logStreamName")
        if not stream:
            return None
        options = (container.get("logConfiguration") or {}).get("options") or {}
        for group in (options.get("awslogs-group") or self.names.log_group, DEFAULT_GROUP):
            if self._group_has(group, stream):
                self._streams[job] = (group, stream)
                return group, stream
        return None  # named, but no event written yet

    def _group_has(self, group: str, stream: str) -> bool:
        try:
            found = self.clients("logs").describe_log_streams(
                logGroupName=group, logStreamNamePrefix=stream
            )["logStreams"]
        except Exception:
            return False
        return any(s["logStreamName"] == stream for s in found)
