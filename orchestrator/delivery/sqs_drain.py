"""Draining a job's events queue: each event, checked, recorded through the same handlers
the HTTP worker routes use, and deleted only once its transaction committed.

One thread per running aws job long-polls the queue (``drain_once``); closing a job drains
what is left before its queues go.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from orchestrator.aws import AwsUnreachable, error_code, explain
from orchestrator.delivery import handlers
from orchestrator.errors import InvalidRequest, NotFound
from orchestrator.store import job_queries
from orchestrator.store.models import RemoteQueues
from runtime.protocol import EventKind, sign

if TYPE_CHECKING:
    from orchestrator.delivery.sqs import SqsDelivery

log = logging.getLogger(__name__)

#: How long one drain receive waits for events.
DRAIN_WAIT_S = 1
#: An event that cannot be recorded yet comes back after this many seconds ...
RETRY_EVENT_S = 1
#: ... at most this many times.
MAX_EVENT_TRIES = 50
#: The error codes of a queue that does not exist.
QUEUE_GONE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class Drain:
    """One thread that records a job's events as they arrive."""

    def __init__(self, delivery: SqsDelivery, queues: RemoteQueues) -> None:
        self.delivery, self.queues = delivery, queues
        self.ctx = delivery.ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"drain-{queues.job_id}", daemon=True
        )

    def start(self) -> None:
        """Start draining on its own thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop draining and wait for the thread (unless called from it)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=DRAIN_WAIT_S + 10)

    def _run(self) -> None:
        job_id, warned = self.queues.job_id, ""
        while not self._stop.is_set():
            try:
                self.drain_once(DRAIN_WAIT_S)
            except QueueGone:
                self.delivery.queue_gone(self.queues, self.queues.events_url)
                return
            except Exception as e:
                explained = explain(e, f"draining the events of job {job_id}")
                if isinstance(explained, AwsUnreachable):  # the supervisor waits it out
                    self.delivery.unanswered(job_id, explained.message)
                if str(e) != warned:  # once, not every second while it lasts
                    log.warning("draining job %s: %s", job_id, e)
                    warned = str(e)
                self._stop.wait(1.0)
            else:
                self.delivery.answered(job_id)
                warned = ""

    def drain_once(self, wait_s: int) -> int:
        """Receive and record one round of events; return how many were received."""
        sqs = self.delivery.clients("sqs")
        try:
            answer = sqs.receive_message(
                QueueUrl=self.queues.events_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait_s,
                AttributeNames=["ApproximateReceiveCount"],
            )
        except Exception as e:
            if error_code(e) in QUEUE_GONE:
                raise QueueGone(self.queues.events_url) from None
            raise
        messages = answer.get("Messages", [])
        done = []
        for message in messages:
            received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
            if self._record(message["Body"], received):
                done.append({"Id": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]})
            else:  # back soon, not after the whole visibility timeout
                with contextlib.suppress(Exception):
                    sqs.change_message_visibility(
                        QueueUrl=self.queues.events_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=RETRY_EVENT_S,
                    )
        if done:
            try:
                sqs.delete_message_batch(QueueUrl=self.queues.events_url, Entries=done)
            except Exception as e:  # they come back, and count once: no harm
                log.warning("deleting events of job %s: %s", self.queues.job_id, e)
            self.ctx.wake()
        return len(messages)

    def _record(self, text: str, received: int) -> bool:
        """Record one event; return whether its message may be deleted.

        An event that is not genuine (not from a worker of this job, a bad signature) or
        not valid is logged and dropped. One that names a message not recorded yet, or
        failed for another reason, comes back, until it has come back ``MAX_EVENT_TRIES``
        times: then it is dropped, with an error in the log.
        """
        job_id = self.queues.job_id
        try:
            worker_id, event = self._open(text)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("dropped an event of job %s that is not genuine: %s", job_id, e)
            return True
        try:
            self._apply(worker_id, event)
            return True
        except (InvalidRequest, NotFound) as e:  # invalid, or of a worker no longer known
            log.warning("dropped an event of job %s: %s", job_id, e.message)
            return True
        except handlers.NotYet:
            pass
        except Exception:
            log.exception("recording an event of job %s failed (try %d)", job_id, received)
        if received >= MAX_EVENT_TRIES:
            log.error("dropped an event of job %s after %d tries: %s", job_id, received, text[:500])
            return True
        return False

    def _open(self, text: str) -> tuple[str, dict[str, Any]]:
        """Return the worker and event of a genuine envelope; raise ``ValueError`` otherwise."""
        envelope = json.loads(text)
        worker_id = str(envelope["worker_id"])
        if not worker_id.startswith(f"{self.queues.job_id}-"):
            raise ValueError(f"worker {worker_id} is not of this job")
        event_text = envelope.get("event")
        if event_text is None:
            key = str(envelope["s3"])
            if not key.startswith(f"jobs/{self.queues.job_id}/events/{worker_id}-"):
                raise ValueError(f"the event of worker {worker_id} points outside its folder")
            answer = self.delivery.clients("s3").get_object(Bucket=self.queues.bucket, Key=key)
            event_text = answer["Body"].read().decode()
        secret = self.ctx.credentials.worker_secret(worker_id)
        if not hmac.compare_digest(sign(secret, str(event_text)), str(envelope.get("sig"))):
            raise ValueError(f"the signature of worker {worker_id}'s event is wrong")
        event = json.loads(event_text)
        if not isinstance(event, dict):
            raise ValueError("an event must be a JSON object")
        return worker_id, event

    def _apply(self, worker_id: str, event: dict[str, Any]) -> None:
        with self.ctx.store.read() as conn:
            if job_queries.status_of(conn, self.queues.job_id) is None:
                raise NotFound(f"job {self.queues.job_id} was deleted with its API")
        try:
            kind = EventKind(str(event.get("kind")))
        except ValueError:
            raise InvalidRequest(f"kind: unknown event kind {event.get('kind')!r}") from None
        if kind is EventKind.STATE:
            handlers.report_state(self.ctx, worker_id, event)
        elif kind is EventKind.NEXT:
            handlers.record_remote_next(self.ctx, worker_id, event)
        elif kind is EventKind.GPUS:
            handlers.record_remote_gpus(self.ctx, worker_id, event)
        else:
            handlers.record_remote_hook(self.ctx, worker_id, event)


class QueueGone(Exception):
    """A job's queue no longer exists."""
