"""The protocol over SQS and S3, for workers that cannot reach their orchestrator (AWS Batch).

Each job has a **work** queue (one message per batch attempt, and one for the job's
``on_job_complete``) and an **events** queue the orchestrator drains into its store. A
lease is a ReceiveMessage; the orchestrator learns of it from the next event, which also
carries the acks of finished batches, and only then are those batches' messages deleted:
an outcome is durable before its message goes. A heartbeat extends the held messages'
visibility and reads the job's ``control.json`` in S3: a stop or an ended job makes the
worker finish its batch and exit, as SIGTERM does. Each event is signed with the worker's
own secret. Bodies above ``MAX_MESSAGE_BYTES`` travel through S3 as pointers.

The description a worker is launched with is
``sqs://?work=URL&events=URL&bucket=B&job=ID&visibility=S&idle=S``. boto3 is imported here
only: the HTTP transport stays standard-library only.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.errors import WorkerError
from runtime.protocol import (
    DEFAULT_ORCHESTRATOR_WAIT_S,
    GPUS_FIELD,
    JOB_KEY_ENV,
    MAX_MESSAGE_BYTES,
    SIG_ATTRIBUTE,
    EventKind,
    Report,
    Task,
    sign,
)
from runtime.transport import Json, Transport

#: How long an idle ReceiveMessage waits for a message (SQS long polling).
LONG_POLL_S = 2
#: How often a worker with nothing to do reads ``control.json``.
CONTROL_EVERY_S = 2.0
#: SQS takes at most this many messages per receive, delete or visibility change.
SQS_MAX = 10
_GONE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


#: How often a worker tries AWS again while it does not answer.
UNANSWERED_RETRY_S = 2.0


@dataclass(frozen=True)
class Where:
    """A job's queues and bucket, as the launch description names them."""

    work: str
    events: str
    bucket: str
    job_id: str
    visibility_s: int
    idle_s: float

    @classmethod
    def parse(cls, description: str) -> Where:
        """Read a ``sqs://?...`` description."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(description).query).items()}
        try:
            return cls(
                query["work"],
                query["events"],
                query["bucket"],
                query["job"],
                int(float(query.get("visibility", "30"))),
                float(query.get("idle", "300")),
            )
        except (KeyError, ValueError) as e:
            raise WorkerError(f"bad sqs transport description {description!r}: {e}") from None


@dataclass
class _Shared:
    """What the worker's transports (its loop's and its heartbeat's) know together."""

    receipts: dict[int, str] = field(default_factory=dict)  # held batch -> receipt handle
    attempts: dict[int, int] = field(default_factory=dict)  # held batch -> message attempt
    pending: dict[str, set[int]] = field(default_factory=dict)  # receipt -> batches not done
    handed_back: set[str] = field(default_factory=set)  # receipts with a released batch
    per_message: int = 1  # batches in the last message received
    hook_receipt: str | None = None
    ended: str | None = None  # why the worker must stop, once control.json says so
    signalled: bool = False
    last_work: float = field(default_factory=time.monotonic)
    control_read: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


def _without_lease(ack: Json) -> Json:
    return {key: value for key, value in ack.items() if key != "lease"}


_KEY: list[str] = []


def _job_key() -> str:
    """Return the job's key, taken out of the environment once (the predictor never sees it)."""
    with _SHARED_LOCK:
        if not _KEY:
            key = os.environ.pop(JOB_KEY_ENV, "")
            if not key:
                raise WorkerError(f"{JOB_KEY_ENV} is not set: the job's key is missing")
            _KEY.append(key)
        return _KEY[0]


def _shared_of(key: str) -> _Shared:
    with _SHARED_LOCK:
        return _SHARED.setdefault(key, _Shared())


class QueueGone(WorkerError):
    """The job's queue was deleted: the job has ended (or its queue was removed by hand)."""


class SqsTransport(Transport):
    """The five protocol calls on a job's SQS queues and S3 prefix."""

    def __init__(
        self,
        description: str,
        worker_id: str,
        secret: str,
        wait_s: float = DEFAULT_ORCHESTRATOR_WAIT_S,
        server_cert: str | None = None,
    ) -> None:
        import boto3
        import botocore.config

        self.where = Where.parse(description)
        self._worker_id, self._secret = worker_id, secret
        self._wait_s = wait_s
        self._shared = _shared_of(f"{description}|{worker_id}")
        self._job_key = _job_key()
        config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 8})
        self._sqs = boto3.client("sqs", config=config)
        self._s3 = boto3.client("s3", config=config)

    # --- the protocol ------------------------------------------------------------------

    def spec(self) -> Json:
        """Read the job's ``spec.json`` and add this worker's identity."""
        spec = json.loads(self._get(f"jobs/{self.where.job_id}/spec.json"))
        return {
            **spec,
            "worker_id": self._worker_id,
            "worker_name": self._worker_id.rsplit("-", 1)[-1],
        }

    def report(self, state: Report, reason: str | None = None, error: str | None = None) -> None:
        """Send a state event (a ``done`` after the queues are gone has no one to tell)."""
        event: Json = {"kind": EventKind.STATE, "state": state.value}
        if reason is not None:
            event["reason"] = reason
        if error is not None:
            event["error"] = error
        try:
            self._send_event(event)
        except QueueGone:
            if state is not Report.DONE:
                raise

    def next_task(self, request: Json) -> Json:
        """Receive batches, send one event with the acks and new leases, delete the acked."""
        acks, released = request.get("acks") or [], request.get("release") or []
        stopping, want = bool(request.get("stopping")), int(request.get("want", 1))
        shared = self._shared
        ended = self._ended()
        try:
            batches: list[Json] = []
            hook: Json | None = None
            if want and not stopping and ended is None:
                messages = max(1, min(SQS_MAX, want // shared.per_message))
                batches, hook = self._receive(messages, wait=0 if acks else LONG_POLL_S)
            self._send_next(acks, batches, released)
        except QueueGone as e:
            return {"task": Task.EXIT, "reason": str(e)}
        self._settle_messages(acks, released)
        if batches or hook is not None:
            shared.last_work = time.monotonic()
        if stopping:
            return {"task": Task.EXIT, "reason": "the worker is stopping"}
        if ended is not None:
            return {"task": Task.EXIT, "reason": ended}
        if hook is not None:
            return {"task": Task.ON_JOB_COMPLETE, "job_summary": hook}
        if batches or want == 0:
            return {"task": Task.BATCHES, "batches": batches}
        idle = time.monotonic() - shared.last_work
        if idle > self.where.idle_s:
            return {"task": Task.EXIT, "reason": f"no work arrived for {idle:.0f}s"}
        return {"task": Task.WAIT, "delay_s": 0.0}

    def heartbeat(self, batch_ids: list[int], gpus: list[Json] | None = None) -> Json:
        """Extend the held messages' visibility, send the GPU samples when there are some
        (an event of their own), and stop the worker when its job says so."""
        if gpus:
            self._send_event({"kind": EventKind.GPUS, GPUS_FIELD: gpus})
        shared = self._shared
        with shared.lock:
            held = {shared.receipts[b] for b in batch_ids if b in shared.receipts}
        receipts = sorted(held)
        for start in range(0, len(receipts), SQS_MAX):
            entries = [
                {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": self.where.visibility_s}
                for n, r in enumerate(receipts[start : start + SQS_MAX])
            ]
            self._call(self._sqs.change_message_visibility_batch, QueueUrl=self.where.work,
                       Entries=entries)  # fmt: skip
        status = self._read_control(force=True)
        return {"held": len(receipts), "job_status": status}

    def report_hook(self, error: str | None) -> None:
        """Send the hook's outcome, then delete its message."""
        self._send_event({"kind": EventKind.HOOK, "error": error})
        receipt, self._shared.hook_receipt = self._shared.hook_receipt, None
        if receipt is not None:
            self._call(self._sqs.delete_message, QueueUrl=self.where.work, ReceiptHandle=receipt)

    def close(self) -> None:
        """Nothing to release: boto3 clients pool their own connections."""

    # --- steps -------------------------------------------------------------------------

    def _receive(self, count: int, wait: int) -> tuple[list[Json], Json | None]:
        """Receive up to ``count`` messages: batches (held from now on) and maybe the hook.

        A message the orchestrator did not sign, or that cannot be read, is deleted and
        said so; a second copy of a batch already held is handed back or deleted.
        """
        answer = self._call(
            self._sqs.receive_message,
            QueueUrl=self.where.work,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            VisibilityTimeout=self.where.visibility_s,
            MessageAttributeNames=[SIG_ATTRIBUTE],
        )
        batches: list[Json] = []
        hook: Json | None = None
        for message in answer.get("Messages", []):
            receipt = message["ReceiptHandle"]
            body = self._read_message(message)
            if body is None:
                self._delete(receipt)
            elif "hook" in body:
                if hook is None and self._shared.hook_receipt is None:
                    hook, self._shared.hook_receipt = body["hook"], receipt
            else:
                held = self._hold(body["batches"], receipt)
                batches += [{**batch, "lease": receipt} for batch in held]
                self._shared.per_message = max(1, len(body["batches"]))
        if hook is not None and batches:  # the hook waits until these batches are done
            self._forget_hook()
            hook = None
        if hook is not None:
            self._keep_hook_alive()
        return sorted(batches, key=lambda b: b["index"]), hook

    def _read_message(self, message: Json) -> Json | None:
        """Return a work message's body if the orchestrator signed it, else None."""
        try:
            text = message["Body"]
            sig = message.get("MessageAttributes", {}).get(SIG_ATTRIBUTE, {}).get("StringValue")
            if not hmac.compare_digest(sign(self._job_key, text), str(sig)):
                raise ValueError("it is not signed by the orchestrator")
            body = json.loads(text)
            if "hook" not in body:
                batches = [
                    json.loads(self._get(str(b["s3"]))) if "s3" in b else b for b in body["batches"]
                ]
                for batch in batches:
                    int(batch["batch_id"]), int(batch["attempt"]), int(batch["index"])
                body["batches"] = batches
            return dict(body)
        except (ValueError, KeyError, TypeError, WorkerError) as e:
            print(f"deleted a message of the work queue: {e}", file=sys.stderr)
            return None

    def _hold(self, batches: list[Json], receipt: str) -> list[Json]:
        """Hold a message's batches; return those not already held from another message.

        A message whose batches are all held already (a second copy) is deleted.
        """
        fresh = []
        with self._shared.lock:
            for batch in batches:
                if batch["batch_id"] in self._shared.attempts:
                    continue
                self._shared.receipts[batch["batch_id"]] = receipt
                self._shared.attempts[batch["batch_id"]] = batch["attempt"]
                fresh.append(batch)
            if fresh:
                self._shared.pending[receipt] = {batch["batch_id"] for batch in fresh}
        if not fresh:
            self._delete(receipt)
        return fresh

    def _delete(self, receipt: str) -> None:
        self._call(self._sqs.delete_message, QueueUrl=self.where.work, ReceiptHandle=receipt)

    def _keep_hook_alive(self) -> None:
        """Extend the hook message's visibility while ``on_job_complete`` runs."""
        shared, every = self._shared, max(1.0, self.where.visibility_s / 3)

        def extend() -> None:
            while (receipt := shared.hook_receipt) is not None:
                time.sleep(every)
                if shared.hook_receipt != receipt:
                    return
                with contextlib.suppress(WorkerError):
                    self._call(self._sqs.change_message_visibility, QueueUrl=self.where.work,
                               ReceiptHandle=receipt,
                               VisibilityTimeout=self.where.visibility_s)  # fmt: skip

        threading.Thread(target=extend, name="hook-visibility", daemon=True).start()

    def _forget_hook(self) -> None:
        receipt, self._shared.hook_receipt = self._shared.hook_receipt, None
        if receipt is not None:
            self._call(self._sqs.change_message_visibility, QueueUrl=self.where.work,
                       ReceiptHandle=receipt, VisibilityTimeout=0)  # fmt: skip

    def _send_next(self, acks: list[Json], batches: list[Json], released: list[Json]) -> None:
        """Send the acks, new leases and released batches as one event (if any)."""
        if not (acks or batches or released):
            return
        attempts = self._shared.attempts
        event = {
            "kind": EventKind.NEXT,
            "acks": [
                {**_without_lease(ack), "attempt": attempts.get(ack["batch_id"], 0)} for ack in acks
            ],
            "leases": [{"batch_id": b["batch_id"], "attempt": b["attempt"]} for b in batches],
            "release": [
                {"batch_id": r["batch_id"], "attempt": attempts.get(r["batch_id"], 0)}
                for r in released
            ],
        }
        self._send_event(event)

    def _settle_messages(self, acks: list[Json], released: list[Json]) -> None:
        """Delete each message whose batches are all acknowledged; make one visible again
        when some of its batches were handed back (its finished ones count only once)."""
        shared = self._shared
        done: list[str] = []
        back: list[str] = []
        with shared.lock:
            for entry, handed_back in [(a, False) for a in acks] + [(r, True) for r in released]:
                batch_id = entry["batch_id"]
                shared.attempts.pop(batch_id, None)
                receipt = shared.receipts.pop(batch_id, None)
                if receipt is None:
                    continue
                if handed_back:
                    shared.handed_back.add(receipt)
                left = shared.pending.get(receipt, set())
                left.discard(batch_id)
                if not left:
                    shared.pending.pop(receipt, None)
                    if receipt in shared.handed_back:
                        shared.handed_back.discard(receipt)
                        back.append(receipt)
                    else:
                        done.append(receipt)
        for start in range(0, len(done), SQS_MAX):
            entries = [
                {"Id": str(n), "ReceiptHandle": r}
                for n, r in enumerate(done[start : start + SQS_MAX])
            ]
            self._call(self._sqs.delete_message_batch, QueueUrl=self.where.work, Entries=entries)
        for start in range(0, len(back), SQS_MAX):
            visible = [
                {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0}
                for n, r in enumerate(back[start : start + SQS_MAX])
            ]
            self._call(self._sqs.change_message_visibility_batch, QueueUrl=self.where.work,
                       Entries=visible)  # fmt: skip

    def _send_event(self, event: Json) -> None:
        """Send a signed event; a large one goes to S3 and its message points at it."""
        text = json.dumps(event, separators=(",", ":"))
        envelope: Json = {"worker_id": self._worker_id, "sig": sign(self._secret, text)}
        body = json.dumps({**envelope, "event": text})  # the text's quotes escaped, once more
        if len(body.encode()) > MAX_MESSAGE_BYTES:
            key = f"jobs/{self.where.job_id}/events/{self._worker_id}-{uuid.uuid4().hex}.json"
            self._call(self._s3.put_object, Bucket=self.where.bucket, Key=key, Body=text.encode())
            body = json.dumps({**envelope, "s3": key})
        self._call(self._sqs.send_message, QueueUrl=self.where.events, MessageBody=body)

    def _ended(self) -> str | None:
        """Return why the worker must stop (control.json, read now and then), or None."""
        self._read_control(force=False)
        return self._shared.ended

    def _read_control(self, force: bool) -> str | None:
        """Read ``control.json``.

        On a stop seen by the heartbeat (the worker holds batches), the worker SIGTERMs
        itself once: it finishes its batch and hands back the rest, as on any SIGTERM.
        """
        shared = self._shared
        now = time.monotonic()
        if not force and now - shared.control_read < CONTROL_EVERY_S:
            return None
        shared.control_read = now
        try:
            control = json.loads(self._get(f"jobs/{self.where.job_id}/control.json"))
        except WorkerError:
            return None
        status = str(control.get("status") or "")
        if status and status != "status_running":
            shared.ended = f"the job is {status}"
        elif self._worker_id in (control.get("stop") or []):
            shared.ended = "the orchestrator stopped this worker"
        if shared.ended is not None and force and not shared.signalled:
            shared.signalled = True
            os.kill(os.getpid(), signal.SIGTERM)
        return status or None

    def _get(self, key: str) -> bytes:
        """Read an object the orchestrator wrote for the job, checking its signature."""
        answer = self._call(self._s3.get_object, Bucket=self.where.bucket, Key=key)
        body = bytes(answer["Body"].read())
        sig = (answer.get("Metadata") or {}).get(SIG_ATTRIBUTE)
        if not hmac.compare_digest(sign(self._job_key, body.decode()), str(sig)):
            raise WorkerError(f"s3://{self.where.bucket}/{key} is not signed by the orchestrator")
        return body

    def _call(self, method: Any, **kwargs: Any) -> Any:
        """Call AWS; a deleted queue raises ``QueueGone``, any other failure ``WorkerError``.

        An AWS that does not answer (no connection, a timeout) is waited out for up to the
        worker's orchestrator wait, as the HTTP transport waits out its orchestrator.
        """
        import botocore.exceptions as bx

        unanswered_since: float | None = None
        while True:
            try:
                return method(**kwargs)
            except bx.ClientError as e:
                code = str(e.response.get("Error", {}).get("Code", ""))
                if code in _GONE:
                    raise QueueGone("the job's queue is gone: the job has ended") from None
                raise WorkerError(f"AWS refused {method.__name__}: {e}") from None
            except (bx.ConnectionError, bx.HTTPClientError) as e:
                now = time.monotonic()
                if unanswered_since is None:
                    unanswered_since = now
                    print(f"AWS did not answer {method.__name__} ({e}); trying again for"
                          f" up to {self._wait_s:g}s", flush=True)  # fmt: skip
                elif now - unanswered_since >= self._wait_s:
                    raise WorkerError(
                        f"AWS did not answer {method.__name__} for {self._wait_s:g}s: {e}"
                    ) from None
                time.sleep(min(UNANSWERED_RETRY_S, self._wait_s))
            except bx.BotoCoreError as e:
                raise WorkerError(f"AWS call {method.__name__} failed: {e}") from None
