"""The one module that speaks HTTP to the orchestrator.

Every method returns the server's JSON document (``job_status`` returns the inner
``job_status`` object; ``get_job`` keeps the whole response). Transport failures and
error statuses become ``CortexTuiError`` subclasses with a message fit for a user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from cortex_tui.errors import ApiError, CortexTuiError, InputError, ServerUnreachable

Json = dict[str, Any]
DEFAULT_TIMEOUT = 30.0
# Deploying may build an image and deleting an API waits for its workers to stop.
SLOW_TIMEOUT = 30 * 60.0
_CONNECT_TIMEOUT = 5.0


class BearerToken(httpx.Auth):
    """Sends ``Authorization: Bearer <token>``, the token looked up at each request.

    The embedded orchestrator writes its token when it first starts, which may be after
    the client was made: a token source that reads it lazily picks it up.
    """

    def __init__(self, token: str | Callable[[], str | None] | None) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header when there is a token."""
        token = self._token() if callable(self._token) else self._token
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class CortexClient:
    """A small synchronous client for one orchestrator.

    Args:
        base_url: The orchestrator's URL, e.g. ``http://127.0.0.1:7311``.
        timeout: Seconds to wait for a response (streams that follow a job wait forever).
        transport: An httpx transport to use instead of the network (tests, proxies).
        async_transport: The same for the async streams (``stream_logs``).
        token: The orchestrator's token, or a function that returns it when asked.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        token: str | Callable[[], str | None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._async_transport = async_transport
        self._auth = BearerToken(token)
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self._auth,
            timeout=httpx.Timeout(timeout, connect=_CONNECT_TIMEOUT),
            transport=transport,
            # Certificates only matter for https (redirects are not followed), and loading
            # them costs every command a few hundred milliseconds.
            verify=self.base_url.startswith("https://"),
            headers={"User-Agent": "cortex-tui"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> CortexClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- management --------------------------------------------------------------

    def health(self) -> Json:
        """Return the server's health document (home, backend, pid, url)."""
        return self._json("GET", "/_cortex/health")

    def deploy(self, path: Path, config_file: str | None = None) -> Json:
        """Deploy the APIs of a project directory or of its ``cortex.yaml`` (see
        ``project_and_config``); return ``{"apis": [{"name", "result", ...}]}``."""
        project_dir, config_file = project_and_config(path, config_file)
        body = {"project_dir": str(project_dir), "config_file": config_file}
        return self._json("POST", "/_cortex/apis", json=body, timeout=SLOW_TIMEOUT)

    def builds(self) -> Json:
        """Return ``{"builds": [{"image", "step"}]}``: the image builds in progress."""
        return self._json("GET", "/_cortex/builds")

    def list_apis(self) -> Json:
        """Return ``{"apis": [...]}``: every API with its running jobs and latest job."""
        return self._json("GET", "/_cortex/apis")

    def api_usage(self, name: str) -> Json:
        """Return what an API holds: ``jobs``, ``running_jobs``, ``data_bytes``,
        ``log_bytes``, ``snapshot_bytes`` (and ``deleted_time`` once deleted)."""
        return self._json("GET", f"/_cortex/apis/{_seg(name)}/usage", timeout=SLOW_TIMEOUT)

    def delete_api(self, name: str, purge: bool = False) -> Json:
        """Stop an API's running jobs and delete it (its jobs too with ``purge``); return
        the server's message and counts."""
        params = {"purge": "true"} if purge else None
        return self._json(
            "DELETE", f"/_cortex/apis/{_seg(name)}", params=params, timeout=SLOW_TIMEOUT
        )

    def prune(
        self,
        older_than_s: float | None = None,
        dry_run: bool = False,
        ended_before: float | None = None,
    ) -> Json:
        """Reclaim disk (or, with ``dry_run``, say what would go); return the report.

        ``ended_before`` (a dry run's, from its report) bounds the jobs removed to those
        that had ended when the dry run looked.
        """
        params: dict[str, str] = {"dry_run": "true" if dry_run else "false"}
        if older_than_s is not None:
            params["older_than_s"] = str(older_than_s)
        if ended_before is not None:
            params["ended_before"] = repr(ended_before)
        return self._json("POST", "/_cortex/prune", params=params, timeout=SLOW_TIMEOUT)

    # --- the reference's per-API endpoints ------------------------------------------

    def list_jobs(self, api: str, limit: int = 100) -> Json:
        """Return ``{"api_name", "endpoint", "jobs": [...]}``, newest job first."""
        return self._json("GET", f"/{_seg(api)}", params={"limit": limit})

    def get_job(self, api: str, job_id: str) -> Json:
        """Return the whole ``GET /<api>/<job_id>`` response, ``{"job_status": {...}}``."""
        return self._json("GET", f"/{_seg(api)}/{_seg(job_id)}")

    def job_status(self, api: str, job_id: str) -> Json:
        """Return the job's ``job_status`` object."""
        status: Json = self.get_job(api, job_id)["job_status"]
        return status

    def submit(self, api: str, body: Json, dry_run: bool = False) -> Json:
        """Submit a job (or, with ``dry_run``, validate it and describe its batches)."""
        params = {"dryRun": "true"} if dry_run else None
        return self._json("POST", f"/{_seg(api)}", json=body, params=params, timeout=SLOW_TIMEOUT)

    def stop_job(self, api: str, job_id: str) -> Json:
        """Stop a job; return ``{"message": "stopped job <job_id>"}``."""
        return self._json("DELETE", f"/{_seg(api)}/{_seg(job_id)}", timeout=SLOW_TIMEOUT)

    # --- a job's logs, results, failures and workers --------------------------------

    def logs(
        self, api: str, job_id: str, follow: bool = False, worker: str | None = None
    ) -> Iterator[str]:
        """Yield the job's log lines (without newlines); ``follow`` until the job ends."""
        params: dict[str, str] = {"follow": "true"} if follow else {}
        if worker is not None:
            params["worker"] = worker
        # A followed job may be silent for minutes: only the connection has a deadline.
        timeout = httpx.Timeout(None, connect=_CONNECT_TIMEOUT) if follow else None
        yield from self._lines(f"{_job_path(api, job_id)}/logs", params, timeout)

    async def stream_logs(
        self, api: str, job_id: str, follow: bool = False, worker: str | None = None
    ) -> AsyncIterator[list[str]]:
        """Yield the job's log lines like ``logs``, a list per chunk received, without
        blocking an event loop.

        Cancelling the task that iterates closes the connection at once, which a blocking
        stream in a thread cannot do (the TUI follows logs this way). Lines come in lists
        so that a fast log costs an event loop one step per chunk, not one per line.
        """
        params: dict[str, str] = {"follow": "true"} if follow else {}
        if worker is not None:
            params["worker"] = worker
        async with httpx.AsyncClient(
            base_url=self.base_url,
            auth=self._auth,
            timeout=httpx.Timeout(None, connect=_CONNECT_TIMEOUT),
            transport=self._async_transport,
            verify=self.base_url.startswith("https://"),
            headers={"User-Agent": "cortex-tui"},
        ) as http:
            try:
                path = f"{_job_path(api, job_id)}/logs"
                async with http.stream("GET", path, params=params) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _raise_for_status(response)
                    partial = ""
                    async for text in response.aiter_text():
                        *lines, partial = (partial + text).split("\n")
                        if lines:
                            yield lines
                    if partial:
                        yield [partial]
            except httpx.TransportError as e:
                raise _translate(e, self.base_url) from None

    def results(self, api: str, job_id: str, merge_retries: bool = False) -> Iterator[str]:
        """Yield the job's results as JSON lines (without newlines), in item order; with
        ``merge_retries``, its retries' results fill in the items that failed."""
        params = {"merge_retries": "true"} if merge_retries else {}
        yield from self._lines(f"{_job_path(api, job_id)}/results", params, None)

    def retry(self, api: str, job_id: str, body: Json | None = None) -> Json:
        """Submit a new job of the job's failed batches (``body``: ``workers``, ``config``,
        ``batch_size``, ``timeout``, ``retries``, ``backend``); return it as ``submit`` does."""
        return self._json(
            "POST", f"{_job_path(api, job_id)}/retry", json=body or {}, timeout=SLOW_TIMEOUT
        )

    def failed(self, api: str, job_id: str, limit: int | None = None) -> Json:
        """Return ``{"job_id", "failed_batches": [...]}``, the failed-batch ledger (its first
        ``limit`` entries; the server's default is 1,000)."""
        params = {} if limit is None else {"limit": limit}
        return self._json("GET", f"{_job_path(api, job_id)}/failed", params=params)

    def workers(self, api: str, job_id: str) -> Json:
        """Return ``{"workers": [...]}``: each worker's state and how it ended."""
        return self._json("GET", f"{_job_path(api, job_id)}/workers")

    def replay_spec(self, api: str, job_id: str, batch_index: int) -> Json:
        """Return what replaying a batch needs: its snapshot, predictor, env, merged config,
        ``job_spec`` and exact payload (``GET .../batches/<index>/replay``)."""
        return self._json("GET", f"{_job_path(api, job_id)}/batches/{batch_index}/replay")

    # --- plumbing ------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Json:
        try:
            request = self._http.build_request(method, path, **kwargs)
        except (ValueError, RecursionError) as e:  # a body that JSON cannot carry
            raise InputError(f"{method} {path}: {_unsendable(e)}") from None
        with self._errors():
            response = self._http.send(request)
        _raise_for_status(response)
        try:
            document = response.json()
        except ValueError:
            raise CortexTuiError(
                f"{method} {response.url} did not answer JSON (is this an orchestrator?)"
            ) from None
        if not isinstance(document, dict):
            raise CortexTuiError(f"{method} {response.url} answered an unexpected document")
        return document

    def _lines(
        self, path: str, params: dict[str, str], timeout: httpx.Timeout | None
    ) -> Iterator[str]:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        with self._errors(), self._http.stream("GET", path, params=params, **extra) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for_status(response)
            yield from response.iter_lines()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate httpx transport errors into cortex-tui errors."""
        try:
            yield
        except httpx.TransportError as e:
            raise _translate(e, self.base_url) from None


def project_and_config(path: Path, config_file: str | None) -> tuple[Path, str]:
    """Return the project directory and config file a deploy ``PATH`` names.

    A file is the configuration itself (its folder is the project); a directory holds
    ``config_file`` (the CLI's ``--config-file``; default ``cortex.yaml``).

    Raises:
        CortexTuiError: A file was given together with a config file name.
    """
    if path.is_file():
        if config_file is not None:
            raise CortexTuiError(
                f"{path} is a file: give either a configuration file or a config file name"
                " (--config-file), not both"
            )
        return path.resolve().parent, path.name
    return path.resolve(), config_file or "cortex.yaml"


def _unsendable(error: ValueError | RecursionError) -> str:
    """Say why a request's body cannot be written as JSON."""
    if isinstance(error, RecursionError):
        return "the request's body is nested too deeply to be sent as JSON"
    if "float" in str(error):  # json.dumps(allow_nan=False), as httpx calls it
        return "the request's body holds NaN or infinity, which JSON cannot carry"
    return f"the request's body cannot be sent as JSON: {error}"


def _translate(error: httpx.TransportError, base_url: str) -> CortexTuiError:
    """Return the cortex-tui error for an httpx transport error."""
    if isinstance(error, httpx.ConnectError):
        return ServerUnreachable(base_url)
    if isinstance(error, httpx.TimeoutException):
        return CortexTuiError(f"the orchestrator at {base_url} did not answer in time")
    return CortexTuiError(f"lost the connection to {base_url}: {error}")


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    message = None
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        message = document["error"]
    elif isinstance(document, dict) and isinstance(document.get("detail"), str):
        message = document["detail"]  # FastAPI's own 404/405 pages
    if not message:
        request = response.request
        message = (
            f"{request.method} {request.url} answered {response.status_code}"
            f" {response.reason_phrase}".rstrip()
        )
    raise ApiError(message, response.status_code)


def _seg(value: str) -> str:
    """Quote one path segment (an API name or job id), so that it cannot reach another route.

    Raises:
        InputError: It could not be one segment: empty, a dot path, or holding a ``/``
            (the server decodes ``%2F`` before it routes).
    """
    if value in ("", ".", "..") or "/" in value:
        raise InputError(
            f"{value!r} is not an API name or a job id (those are never empty, '.' or '..',"
            " and hold no '/')"
        )
    return quote(value, safe="")


def _job_path(api: str, job_id: str) -> str:
    return f"/_cortex/apis/{_seg(api)}/jobs/{_seg(job_id)}"
