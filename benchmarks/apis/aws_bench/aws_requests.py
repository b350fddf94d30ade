"""Count a process's AWS requests, for ``benchmarks/aws_backend.py``: a botocore client plugin.

With ``BOTOCORE_EXPERIMENTAL__PLUGINS=count=aws_requests`` in the environment and this
module importable, botocore hands every client it makes to ``initialize_client_plugin``
(botocore's own mechanism, marked experimental; botocore 1.44 here and in the worker
image has it). A
``before-send`` hook then counts each HTTP request as it goes out, retries included, by
service, operation and what it names (the queue, S3 key or Batch job name: the benchmark
tells one job's requests from another's by them), with the bytes of its body; an
``after-call`` hook counts the ReceiveMessage calls that brought no message.
``CORTEX_BENCH_AWS_REQUESTS`` says where the counts go: a file, to which a line is appended
per request as it goes (uvicorn ends the orchestrator by re-raising SIGTERM, so nothing runs
at its exit), or ``-``: one line on standard output as the process exits (a worker exits
normally, and its log keeps the line). Each line is ``PREFIX`` and then JSON.

It lives beside the benchmark's predictor so that it is baked into the worker image (the
worker runs in ``/app``, which is on its ``sys.path``); nothing of the product imports it.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from typing import Any

#: What starts each line of counts.
PREFIX = "cortex-bench-aws-requests "
#: (service, operation, what it names or "") -> [requests, body bytes, empty receives]
_COUNTS: dict[tuple[str, str, str], list[int]] = {}
_LOCK = threading.Lock()
_REGISTERED: list[bool] = []
_SINK = os.environ.get("CORTEX_BENCH_AWS_REQUESTS", "-")


def initialize_client_plugin(client: Any) -> None:
    """Count the requests of ``client`` (botocore calls this for each client it makes)."""
    client.meta.events.register("before-parameter-build", _note_target)
    client.meta.events.register("before-send", _count)
    client.meta.events.register("after-call.sqs.ReceiveMessage", _empty)
    with _LOCK:
        if not _REGISTERED and _SINK == "-":
            _REGISTERED.append(True)
            atexit.register(_print)


def _note_target(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    for key in ("QueueUrl", "QueueName", "Key", "jobName"):
        value = params.get(key)
        if isinstance(value, str):
            context["bench_target"] = value
            return


def _count(request: Any, event_name: str, **_: Any) -> None:
    service, operation = event_name.split(".", 2)[1:]
    target = str((request.context or {}).get("bench_target", ""))
    length = request.headers.get("Content-Length")
    if length is not None:
        size = int(length)
    elif isinstance(request.body, bytes | str):
        size = len(request.body)
    else:
        size = 0
    _add((service, operation, target), [1, size, 0])


def _empty(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if not parsed.get("Messages"):
        _add(("sqs", "ReceiveMessage", str(context.get("bench_target", ""))), [0, 0, 1])


def _add(key: tuple[str, str, str], counts: list[int]) -> None:
    with _LOCK:
        if _SINK == "-":
            total = _COUNTS.setdefault(key, [0, 0, 0])
            for i, count in enumerate(counts):
                total[i] += count
        else:
            with open(_SINK, "a", encoding="utf-8") as f:
                f.write(_line({key: counts}))


def _print() -> None:
    with _LOCK:
        line = _line(_COUNTS)
    sys.stdout.write(line)
    sys.stdout.flush()


def _line(counts: dict[tuple[str, str, str], list[int]]) -> str:
    rows = [
        {"service": s, "operation": o, "target": t, "requests": n, "bytes": b, "empty": e}
        for (s, o, t), (n, b, e) in sorted(counts.items())
    ]
    return PREFIX + json.dumps({"pid": os.getpid(), "counts": rows}) + "\n"
