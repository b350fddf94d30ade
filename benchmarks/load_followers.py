"""The followers section of benchmarks/load.py: log followers that hang up, then status reads."""

from __future__ import annotations

import math
import selectors
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

import harness
import httpx
from harness import progress
from load_common import (
    FIRST_BYTES_WAIT_S,
    FOLLOWED_WORKERS,
    IMMEDIATE_S,
    NORMAL_RUN,
    REQUEST_TIMEOUT_S,
    SETTLE_S,
    Call,
    Report,
    Sizes,
    Summary,
    busy_job,
    timed,
    timed_with_timeout,
    wait_progress,
)


def bench_followers(sizes: Sizes, report: Report) -> None:
    """Status latency before and after 100 log followers hang up abruptly."""
    with harness.orchestrator() as server:
        api = server.deploy()
        job = server.submit(
            api, busy_job(10_000, FOLLOWED_WORKERS, timeout_s=sizes.followed_job_timeout_s)
        )
        job_ends = job.at + sizes.followed_job_timeout_s
        wait_progress(server, job, timeout_s=20)
        url = f"/{api}/{job.job_id}"
        with server.client(REQUEST_TIMEOUT_S) as client:
            before = [timed(client, "GET", url) for _ in range(sizes.reads_before)]
        normal_ms = max(5 * Summary.of(before).p99_ms, 100.0)
        progress(
            f"followers: {len(before)} status reads before; normal is under {normal_ms:.0f} ms"
        )
        answers = open_and_abandon(
            server, f"/_cortex/apis/{api}/jobs/{job.job_id}/logs?follow=true", sizes.followers
        )
        hung_up = time.monotonic()
        progress(
            f"followers: {sizes.followers} followers' answers within"
            f" {FIRST_BYTES_WAIT_S:g}s: {answers}; all hung up (RST)"
        )
        # Past the job's end (its timeout) its followers end too: give that 30 s more.
        immediate, late = read_after(
            server, url, hung_up, normal_ms, sizes.reads_after, deadline=job_ends + 30
        )
        _report_followers(report, before, immediate, late, hung_up, normal_ms, answers)
        server.http.timeout = httpx.Timeout(REQUEST_TIMEOUT_S)  # stopping a starved server
        progress("followers: stopping the job")


def open_and_abandon(server: harness.Orchestrator, path: str, count: int) -> dict[str, int]:
    """Open ``count`` streaming requests, wait for their first bytes, then reset them all.

    Returns how many answered each status line, and whether log lines came.
    """
    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    token = harness.home_token(server.home)
    auth = "" if token is None else f"Authorization: Bearer {token}\r\n"
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}\r\n".encode()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=REQUEST_TIMEOUT_S)
        sock.sendall(request)
        sock.setblocking(False)
        sockets.append(sock)
    answers = _first_bytes(sockets, FIRST_BYTES_WAIT_S)
    for sock in sockets:  # linger 0: close sends RST, an abrupt hang-up
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return answers


def _first_bytes(sockets: list[socket.socket], wait_s: float) -> dict[str, int]:
    """Read each socket until its response's head and first chunk of log came, or ``wait_s``
    passed; then leave them connected ``SETTLE_S`` more. Count what came, by status line."""
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytes] = {}
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ, data=sock)
        received[sock] = b""
    deadline = time.monotonic() + wait_s
    while selector.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(timeout=left):
            ready: socket.socket = key.data
            data = ready.recv(65536)
            received[ready] += data
            head, _, body = received[ready].partition(b"\r\n\r\n")
            if not data or body or not head.startswith(b"HTTP/1.1 200"):
                selector.unregister(ready)
    selector.close()
    time.sleep(SETTLE_S)
    answers: dict[str, int] = {}
    for data in received.values():
        head, _, body = data.partition(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode(errors="replace") or "nothing"
        if line.startswith("HTTP/1.1 200"):
            line += ", log lines" if body else ", no log lines yet"
        answers[line] = answers.get(line, 0) + 1
    return answers


def read_after(
    server: harness.Orchestrator,
    url: str,
    since: float,
    normal_ms: float,
    reads_after: int,
    deadline: float,
) -> tuple[list[Call], list[Call]]:
    """Read status back to back from ``since`` on two connections; return both reads.

    One starts reads for ``IMMEDIATE_S``; the other starts at ``since + IMMEDIATE_S`` (so a
    first read that hangs does not hide how the server does by then) and goes on until it
    has made ``reads_after`` reads and the server answers normally, or until ``deadline``
    (``time.monotonic()``).
    """
    immediate: list[Call] = []
    first = threading.Thread(
        target=_read_while, args=(server, url, since + IMMEDIATE_S, deadline, immediate)
    )
    first.start()
    late: list[Call] = []
    with server.client(REQUEST_TIMEOUT_S) as client:
        time.sleep(max(0.0, since + IMMEDIATE_S - time.monotonic()))
        while (left := deadline - time.monotonic()) > 0:
            late.append(timed_with_timeout(client, url, min(REQUEST_TIMEOUT_S, left)))
            if len(late) >= reads_after and recovered_at(late, since, normal_ms) is not None:
                break
    first.join()
    return immediate, late


def _read_while(
    server: harness.Orchestrator, url: str, until: float, deadline: float, calls: list[Call]
) -> None:
    """Read status back to back, starting reads until ``until``, none lasting past ``deadline``."""
    with server.client(REQUEST_TIMEOUT_S) as client:
        while time.monotonic() < until:
            left = deadline - time.monotonic()
            calls.append(timed_with_timeout(client, url, min(REQUEST_TIMEOUT_S, left)))


def recovered_at(calls: list[Call], since: float, normal_ms: float) -> float | None:
    """Return when (after ``since``) the first of ``NORMAL_RUN`` normal reads in a row ended.

    "In a row" is in the order the reads ended.
    """
    calls = sorted(calls, key=lambda c: c.started + c.ms / 1000)
    run = 0
    for index, call in enumerate(calls):
        run = run + 1 if call.error is None and call.ms <= normal_ms else 0
        if run == NORMAL_RUN:
            first = calls[index - NORMAL_RUN + 1]
            return first.started + first.ms / 1000 - since
    return None


def _report_followers(
    report: Report,
    before: list[Call],
    immediate: list[Call],
    late: list[Call],
    hung_up: float,
    normal_ms: float,
    answers: dict[str, int],
) -> None:
    """Record and describe what the followers section measured."""
    after = immediate + late
    figures = report.figures
    phases = (
        ("before", before, "status before the followers"),
        ("immediately", immediate, f"status, started < {IMMEDIATE_S:g}s after hang-up"),
        ("after", late, f"status, started >= {IMMEDIATE_S:g}s after hang-up"),
    )
    for name, calls, what in phases:
        summary = Summary.of(calls)
        summary.record(figures, "followers_status", f"_{name}")
        report.add("followers", what, summary)
    figures["followers"] = sum(answers.values())
    figures["followers_with_log"] = sum(
        n for line, n in answers.items() if line.endswith(", log lines")
    )
    refused = [line for line in answers if line.startswith("HTTP/") and " 200 " not in line]
    report.errors["followers"] = [c.error for c in before + after if c.error is not None] + [
        f"{answers[line]} followers answered {line!r}" for line in refused
    ]
    recovered = recovered_at(after, hung_up, normal_ms)
    figures["followers_recovered_s"] = math.nan if recovered is None else recovered
    waited = max((c.started + c.ms / 1000 - hung_up for c in after), default=0.0)
    if recovered is None:
        line = f"not answering normally {waited:.1f}s after the hang-up"
    else:
        line = f"answering normally {recovered:.2f}s after the hang-up"
        status = _status_when_recovered(after, hung_up, recovered)
        if status is not None and status != "status_running":
            line += f" (the job was {status} by then: its end let the followers go)"
    progress(f"followers: {line}")
    report.notes.append(f"followers: {line}")


def _status_when_recovered(calls: list[Call], since: float, recovered: float) -> str | None:
    """Return the job status that the read ending at ``recovered`` returned."""
    for call in calls:
        if call.error is None and abs(call.started + call.ms / 1000 - since - recovered) < 1e-9:
            return str(call.body["job_status"]["status"])
    return None
