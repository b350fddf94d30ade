"""The orchestrator's side of the queue transport (``runtime.sqs_transport``), for aws jobs.

Per job: **open** makes its two queues (tagged with the home), ``spec.json`` and
``control.json``; **publish** puts each queued batch's current attempt on the work queue
(the ``published`` column makes a restart resume where it stopped); **drain** runs a thread
that long-polls the events queue and records each event through the same handlers the
HTTP routes use, deleting it only after its transaction committed; the **hook** message
goes out once every batch has finished; **finish** writes the final status to
``control.json`` and, once no worker of the job is live, deletes the queues.

The store stays the only source of status: nothing is read from queue attributes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import Any

from orchestrator.aws import (
    HOME_TAG_KEY,
    AwsError,
    AwsUnreachable,
    Clients,
    Names,
    error_code,
    explain,
)
from orchestrator.context import Context
from orchestrator.delivery import handlers
from orchestrator.delivery.sqs_drain import QUEUE_GONE, Drain
from orchestrator.jobs import worker_records
from orchestrator.jobs.control import fail_job
from orchestrator.jobs.lifecycle import read_counts
from orchestrator.status import JobStatus
from orchestrator.store import queue, remote_queries, worker_queries
from orchestrator.store.models import Job, RemoteQueues
from runtime.protocol import MAX_MESSAGE_BYTES, SIG_ATTRIBUTE, HookState, sign

log = logging.getLogger(__name__)

#: Messages a job keeps on its queues at most this long (SQS's maximum: 14 days).
RETENTION_S = 14 * 24 * 3600
#: How many batches one publish step sends (the rest go on the next tick) ...
PUBLISH_PER_TICK = 2000
#: ... keeping at most this many (or 100 per worker) waiting on the work queue.
PUBLISH_AHEAD = 500
#: A message carries about this much work at the job's pace ...
PACK_WINDOW_S = 1.0
#: ... and at most this many batches.
MAX_PACK = 10
#: SQS sends, receives and deletes at most this many messages per request.
SQS_MAX = 10
#: How often a running job's work queue is checked for existence.
QUEUE_CHECK_S = 5.0
#: A queue this young that AWS says does not exist is not yet visible, not deleted.
NEW_QUEUE_S = 5.0


class SqsDelivery:
    """Opens, feeds, drains and closes the queues of this orchestrator's aws jobs."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clients: Clients = ctx.aws
        self.names = Names.of(ctx.settings)
        self._drains: dict[str, Drain] = {}
        self._told: dict[str, float] = {}  # ended jobs whose workers were told, and when
        self._opened: dict[str, float] = {}  # when this process opened each job's queues
        self._checked: dict[str, float] = {}  # when each job's work queue was last seen
        # Per job, since when AWS has not answered (and what was said), until it answers.
        self._unanswered: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    # --- per tick ----------------------------------------------------------------------

    def sync(self, job: Job) -> RemoteQueues:
        """Bring a running job's queues up to date: open, drain, publish, the hook."""
        queues = self.open(job)
        self._check_exists(queues)
        self._drain(queues)
        self.publish(queues, job)
        self.publish_hook(queues)
        return queues

    # --- an AWS that does not answer ---------------------------------------------------

    def answered(self, job_id: str) -> None:
        """Note that an AWS call for the job was answered."""
        if job_id in self._unanswered:
            self._unanswered.pop(job_id, None)
            log.info("job %s: AWS answers again", job_id)

    def unanswered(self, job_id: str, error: str) -> None:
        """Note that an AWS call for the job was not answered (no connection, a timeout)."""
        self._unanswered.setdefault(job_id, (time.monotonic(), error))

    def outage(self, job_id: str) -> tuple[float, str] | None:
        """Return for how long AWS has not answered the job's calls, and the first error;
        None while it answers."""
        if (since := self._unanswered.get(job_id)) is None:
            return None
        return time.monotonic() - since[0], since[1]

    def _check_exists(self, queues: RemoteQueues) -> None:
        """Every ``QUEUE_CHECK_S``, make sure the work queue still exists (``_call`` ends the
        job naming it if it is gone): workers that find it gone just exit."""
        now = time.monotonic()
        if now - self._checked.get(queues.job_id, 0.0) < QUEUE_CHECK_S:
            return
        self._checked[queues.job_id] = now
        self._call(
            queues, "get_queue_attributes", QueueUrl=queues.work_url, AttributeNames=["QueueArn"]
        )

    def finish(self, job_id: str, status: str, live_workers: int) -> None:
        """Tell an ended job's workers to stop; delete its queues once none is live.

        Workers exit on their own once ``control.json`` says the job ended; one still live
        ``stop_grace_s`` + ``aws_event_grace_s`` later (a predictor stuck on a batch) is
        terminated, again on every tick until it has ended, so nothing runs, and costs,
        after its job.
        """
        with self.ctx.store.read() as conn:
            queues = remote_queries.get(conn, job_id)
        if queues is None or queues.closed:
            return
        now = time.monotonic()
        if job_id not in self._told:
            self.write_control(queues, status)
            self._told[job_id] = now
        if not live_workers:
            self.close(queues)
            self._told.pop(job_id, None)
            return
        self._drain(queues)  # their last acks and reports still count
        settings = self.ctx.settings
        if now - self._told[job_id] > settings.stop_grace_s + settings.aws_event_grace_s:
            for worker in worker_records.live_workers(self.ctx, job_id):
                if worker.handle:
                    self.ctx.backend(worker.handle["backend"]).stop_worker(worker.handle, 0.0)

    # --- steps -------------------------------------------------------------------------

    def open(self, job: Job) -> RemoteQueues:
        """Return the job's queues, making them (and its spec and control files) once."""
        with self.ctx.store.read() as conn:
            queues = remote_queries.get(conn, job.job_id)
        if queues is not None:
            return queues
        sqs = self.clients("sqs")
        bucket = self.names.bucket(self.clients.account())
        tags = {HOME_TAG_KEY: self.names.tag, "cortex-tui-job": job.job_id}
        attributes = {
            "MessageRetentionPeriod": str(RETENTION_S),
            "VisibilityTimeout": str(int(self.ctx.settings.visibility_timeout_s)),
        }
        urls = {}
        try:
            for kind in ("work", "events"):
                name = self.names.queue(job.job_id, kind)
                urls[kind] = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)[
                    "QueueUrl"
                ]
            queues = RemoteQueues(
                job_id=job.job_id,
                work_url=urls["work"],
                events_url=urls["events"],
                bucket=bucket,
            )
            spec = json.dumps(handlers.job_spec(self.ctx, job))
            self._put(queues, self.names.key(job.job_id, "spec.json"), spec)
            self.write_control(queues, JobStatus.RUNNING.value)
        except Exception as e:
            raise explain(e, f"opening the SQS queues of job {job.job_id}") from None
        with self.ctx.store.write() as conn:
            remote_queries.add(conn, queues)
        self.ctx.log_event(job.job_id, f"opened queues {urls['work']} and {urls['events']}")
        self._opened[job.job_id] = time.monotonic()
        return queues

    def publish(self, queues: RemoteQueues, job: Job) -> int:
        """Send messages for queued batches that have none (new ones and retries).

        Each message carries about ``PACK_WINDOW_S`` of work at the job's measured pace
        (up to ``MAX_PACK`` batches), so short batches cost a fraction of a request each and
        long ones still spread over every worker. Until a pace is known, only one receive's
        worth per worker goes out, one batch per message; then at most ``PUBLISH_AHEAD``
        batches (or 100 per worker) wait on the queue. Returns how many batches went out.
        """
        with self.ctx.store.read() as conn:
            succeeded, time_sum = queue.pace_of(conn, queues.job_id)
        if succeeded:
            pace = time_sum / succeeded
            pack = max(1, min(MAX_PACK, int(PACK_WINDOW_S / max(pace, 1e-3))))
            ahead = max(PUBLISH_AHEAD, job.workers * MAX_PACK * SQS_MAX)
        else:
            pack, ahead = 1, job.workers * SQS_MAX
        sent = 0
        while sent < PUBLISH_PER_TICK:
            with self.ctx.store.read() as conn:
                room = ahead - queue.waiting_on_the_queue(conn, queues.job_id)
                batches = queue.unpublished(conn, queues.job_id, min(room, pack * SQS_MAX))
            if not batches:
                break
            messages = self._messages(queues, batches, pack)
            answer = self._call(
                queues,
                "send_message_batch",
                QueueUrl=queues.work_url,
                Entries=[entry for entry, _ in messages],
            )
            failed = {f["Id"] for f in answer.get("Failed", [])}
            done = [b for entry, group in messages if entry["Id"] not in failed for b in group]
            with self.ctx.store.write() as conn:
                queue.mark_published(conn, done)
            sent += len(done)
            if failed:
                log.warning("SQS refused %d message(s) of job %s", len(failed), queues.job_id)
                break
        return sent

    def _messages(
        self, queues: RemoteQueues, batches: list[queue.Unpublished], pack: int
    ) -> list[tuple[dict[str, Any], list[queue.Unpublished]]]:
        """Group batches, in order, into at most 10 signed messages of up to ``pack``
        batches, all of them together within one SendMessageBatch's size limit (a batch too
        large to share a message goes through S3)."""
        groups: list[list[tuple[str, queue.Unpublished]]] = []
        total = 0
        for batch in batches:
            text = self._batch_text(queues, batch)
            size = len(text.encode()) + 2
            if total + size > MAX_MESSAGE_BYTES:
                break
            if not groups or len(groups[-1]) >= pack:
                if len(groups) == SQS_MAX:
                    break
                groups.append([])
            groups[-1].append((text, batch))
            total += size
        messages = []
        for number, group in enumerate(groups):
            body = '{"batches": [' + ", ".join(text for text, _ in group) + "]}"
            entry = {"Id": str(number), **self._signed_message(queues, body)}
            messages.append((entry, [batch for _, batch in group]))
        return messages

    def _batch_text(self, queues: RemoteQueues, batch: queue.Unpublished) -> str:
        """Return a batch as its message carries it; a large one is a pointer to S3."""
        text = (
            f'{{"batch_id": {batch.batch_id}, "index": {batch.index},'
            f' "attempt": {batch.attempt}, "payload": {batch.payload}}}'
        )
        if len(text.encode()) <= MAX_MESSAGE_BYTES // 2:
            return text
        key = self.names.key(queues.job_id, f"batches/{batch.batch_id}-{batch.attempt}.json")
        self._put(queues, key, text)
        return json.dumps({"batch_id": batch.batch_id, "attempt": batch.attempt, "s3": key})

    def _signed_message(self, queues: RemoteQueues, body: str) -> dict[str, Any]:
        """Return a message's body and its signature under the job's key (an attribute)."""
        sig = sign(self.ctx.credentials.job_key(queues.job_id), body)
        return {
            "MessageBody": body,
            "MessageAttributes": {SIG_ATTRIBUTE: {"DataType": "String", "StringValue": sig}},
        }

    def _put(self, queues: RemoteQueues, key: str, body: str) -> None:
        """Write an object of the job, signed under its key (object metadata)."""
        sig = sign(self.ctx.credentials.job_key(queues.job_id), body)
        self.clients("s3").put_object(
            Bucket=queues.bucket, Key=key, Body=body.encode(), Metadata={SIG_ATTRIBUTE: sig}
        )

    def publish_hook(self, queues: RemoteQueues) -> None:
        """Once every batch has finished, put the job's ``on_job_complete`` on the work queue."""
        if queues.hook_published:
            return
        with self.ctx.store.read() as conn:
            counts = read_counts(conn, queues.job_id)
        if not counts.batches_done or counts.hook_state is not HookState.NONE:
            return
        summary = {
            "job_id": queues.job_id,
            "succeeded": counts.succeeded,
            "failed": counts.failed,
            "total": counts.total,
        }
        message = self._signed_message(queues, json.dumps({"hook": summary}))
        self._call(queues, "send_message", QueueUrl=queues.work_url, **message)
        with self.ctx.store.write() as conn:
            remote_queries.mark_hook_published(conn, queues.job_id)

    def write_control(
        self, queues: RemoteQueues, status: str, stop: list[str] | None = None
    ) -> None:
        """Write ``control.json``: the job's status (and workers asked to stop)."""
        key = self.names.key(queues.job_id, "control.json")
        try:
            self._put(queues, key, json.dumps({"status": status, "stop": stop or []}))
        except Exception as e:
            log.warning("could not write %s: %s", key, e)

    def close(self, queues: RemoteQueues) -> None:
        """Stop draining the job and delete its queues."""
        with self._lock:
            drain = self._drains.pop(queues.job_id, None)
        self._unanswered.pop(queues.job_id, None)
        if drain is not None:
            drain.stop()
        last = Drain(self, queues)  # what the last workers said before they went
        with contextlib.suppress(Exception):
            while last.drain_once(0):
                pass
        sqs = self.clients("sqs")
        for url in (queues.work_url, queues.events_url):
            try:
                sqs.delete_queue(QueueUrl=url)
            except Exception as e:
                if error_code(e) not in QUEUE_GONE:
                    log.warning("could not delete queue %s: %s", url, e)
                    return
        with self.ctx.store.write() as conn:
            remote_queries.mark_closed(conn, queues.job_id)
        self.ctx.log_event(queues.job_id, "deleted the job's SQS queues")

    def remove_orphans(self) -> list[str]:
        """Delete this home's queues that no job of the store owns (a crash cut their
        opening short); return their URLs."""
        with self.ctx.store.read() as conn:
            known = remote_queries.all_urls(conn)
        prefix = f"{self.names.prefix}-"
        removed = []
        try:
            # SQS pages its answer (NextToken) only when MaxResults is given.
            pages = (
                self.clients("sqs")
                .get_paginator("list_queues")
                .paginate(QueueNamePrefix=prefix, MaxResults=1000)
            )
            urls = [url for page in pages for url in page.get("QueueUrls", [])]
        except Exception as e:
            log.warning("could not list this home's SQS queues: %s", e)
            return []
        for url in urls:
            if url not in known:
                try:
                    self.clients("sqs").delete_queue(QueueUrl=url)
                    removed.append(url)
                except Exception as e:
                    log.warning("could not delete the orphan queue %s: %s", url, e)
        return removed

    def stop(self) -> None:
        """Stop every drain thread (the orchestrator is shutting down)."""
        with self._lock:
            drains, self._drains = list(self._drains.values()), {}
        for drain in drains:
            drain.stop()

    def _drain(self, queues: RemoteQueues) -> None:
        with self._lock:
            if queues.job_id not in self._drains:
                drain = Drain(self, queues)
                self._drains[queues.job_id] = drain
                drain.start()

    def _call(self, queues: RemoteQueues, method: str, **kwargs: Any) -> Any:
        """Call SQS; a deleted queue ends the job truthfully, naming the queue."""
        try:
            answer = getattr(self.clients("sqs"), method)(**kwargs)
        except Exception as e:
            if error_code(e) in QUEUE_GONE:
                self.queue_gone(queues, str(kwargs.get("QueueUrl")))
                raise AwsError(f"{method}: the queue {kwargs.get('QueueUrl')} is gone") from None
            explained = explain(e, f"{method} on the queues of job {queues.job_id}")
            if isinstance(explained, AwsUnreachable):
                self.unanswered(queues.job_id, explained.message)
            raise explained from None
        self.answered(queues.job_id)
        return answer

    def queue_gone(self, queues: RemoteQueues, url: str) -> None:
        """End a job whose queue was deleted under it.

        A queue made moments ago may not be visible everywhere yet (AWS asks for a second
        after CreateQueue): within ``NEW_QUEUE_S`` of opening it, that is not an end.
        """
        opened = self._opened.get(queues.job_id)
        if opened is not None and time.monotonic() - opened < NEW_QUEUE_S:
            log.warning("queue %s of job %s not visible yet", url, queues.job_id)
            return
        fail_job(
            self.ctx,
            queues.job_id,
            JobStatus.UNEXPECTED_ERROR,
            f"the job's SQS queue {url} was deleted while the job ran",
        )


def ended_with_open_queues(ctx: Context) -> list[tuple[str, str, int]]:
    """Return ``(job_id, status, live workers)`` of ended jobs whose queues are still open.

    A job deleted with its API counts as stopped.
    """
    out = []
    with ctx.store.read() as conn:
        for job_id, status in remote_queries.open_ones(conn):
            if status is None or JobStatus(status).is_terminal:
                ended = status or JobStatus.STOPPED.value
                out.append((job_id, ended, worker_queries.live_count(conn, job_id)))
    return out
