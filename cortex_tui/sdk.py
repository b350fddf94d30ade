"""The Python client, ``from cortex_tui import Client``, for notebooks and pipelines.

It finds the orchestrator and its token as the CLI does (``--server`` is the ``server``
argument; then ``CORTEX_TUI_SERVER``, ``CORTEX_TUI_TOKEN``, ``CORTEX_TUI_HOME``) and speaks
to it through ``CortexClient``, the client the CLI and the terminal UI use. Every error it
raises is a ``CortexTuiError``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from cortex_tui.client import DEFAULT_TIMEOUT, CortexClient
from cortex_tui.embedded import ensure_server, home_dir, resolve_url, token_source
from cortex_tui.errors import InputError
from cortex_tui.items import read_jsonl
from cortex_tui.job import Job

#: The largest submission the orchestrator takes (larger jobs stream from files).
MAX_BODY_BYTES = 10 * 1024 * 1024
PathLike = str | os.PathLike[str]


class Client:
    """A connection to one orchestrator.

    Args:
        server: The orchestrator's URL (default: ``CORTEX_TUI_SERVER``, else
            ``http://127.0.0.1:7311``).
        token: Its token (default: ``CORTEX_TUI_TOKEN``, else the home's, for a loopback URL).
        start: Start the embedded orchestrator when nothing answers at a loopback URL (as
            ``cortex-tui up`` does, even after ``cortex-tui down``); it says so on stderr.
        timeout: Seconds to wait for an answer.

    Raises:
        ServerUnreachable: Nothing answers (and it was not started).
        EmbeddedServerError: The embedded orchestrator could not be started.
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        token: str | None = None,
        start: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        url = resolve_url(server)
        self.http = CortexClient(url, timeout, token=token or token_source(url, home_dir()))
        try:
            if start:
                ensure_server(self.http, home_dir(), _say, after_down=True)
            else:
                self.http.health()
        except BaseException:
            self.http.close()
            raise

    @property
    def url(self) -> str:
        """The orchestrator's URL."""
        return self.http.base_url

    def close(self) -> None:
        """Close the connections (the orchestrator and its jobs go on)."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def deploy(self, path: PathLike = ".", config_file: str | None = None) -> list[dict[str, Any]]:
        """Deploy (or update) the APIs of a project directory, or of a ``cortex.yaml`` file.

        Returns:
            One ``{"name", "result", ...}`` per API; ``result`` is ``created``, ``updated``
            or ``up_to_date``.
        """
        apis: list[dict[str, Any]] = self.http.deploy(Path(path), config_file)["apis"]
        return apis

    def submit(
        self,
        api: str,
        items: Sequence[Any] | None = None,
        *,
        jsonl: PathLike | None = None,
        delimited_files: PathLike | Sequence[PathLike] | None = None,
        batch_size: int = 1,
        workers: int = 1,
        config: dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """Submit a job; return it (it runs on; see ``Job.wait``).

        Give exactly one source: ``items`` (a list), ``jsonl`` (a local file of one JSON
        item per line, read here and sent) or ``delimited_files`` (files or ``s3://``
        prefixes the orchestrator reads itself: no size limit, but local ones must lie in
        the API's project directory or a ``source_roots`` folder; relative paths are taken
        from the current directory).

        Args:
            batch_size: Items per batch.
            workers: Workers to run.
            config: Overrides of the API's ``predictor.config`` for this job.
            options: Other submission fields: ``timeout``, ``retries``, ``backend``,
                ``max_worker_restarts``, and ``includes``/``excludes`` globs for
                ``delimited_files``.

        Raises:
            InputError: Not exactly one source, or a file that cannot be read.
            ApiError: The orchestrator refused the job (its message says why).
        """
        body = submission(items, jsonl, delimited_files, batch_size, options)
        body["workers"] = workers
        if config:
            body["config"] = config
        return Job(self.http, api, str(self.http.submit(api, body)["job_id"]))

    def job(self, api: str, job_id: str = "latest") -> Job:
        """Return a job of an API by its id, a unique prefix of it, or ``latest``."""
        return Job(self.http, api, str(self.http.job_status(api, job_id)["job_id"]))


def submission(
    items: Sequence[Any] | None,
    jsonl: PathLike | None,
    delimited_files: PathLike | Sequence[PathLike] | None,
    batch_size: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Return a submission body (without ``workers`` and ``config``) for one source."""
    sources = {"items": items, "jsonl": jsonl, "delimited_files": delimited_files}
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        named = ", ".join(given) if given else "none"
        raise InputError(f"give exactly one of items, jsonl, delimited_files (given: {named})")
    patterns = {key: list(options.pop(key)) for key in ("includes", "excludes") if key in options}
    if delimited_files is not None:
        paths: list[PathLike] = (
            [delimited_files]
            if isinstance(delimited_files, str | os.PathLike)
            else list(delimited_files)
        )
        source: dict[str, Any] = {"paths": [_path(p) for p in paths], "batch_size": batch_size}
        return {"delimited_files": source | patterns, **options}
    if patterns:
        raise InputError("includes and excludes go with delimited_files only")
    listed = read_jsonl(Path(jsonl)) if jsonl is not None else list(items or [])
    body: dict[str, Any] = {"item_list": {"items": listed, "batch_size": batch_size}, **options}
    try:
        size = len(json.dumps(body).encode())
    except (TypeError, ValueError) as e:
        raise InputError(f"the job's items and options must be JSON values: {e}") from None
    if size > MAX_BODY_BYTES:
        raise InputError(
            "the job would be a request over the 10 MB limit: write the items one JSON per"
            " line to a file and pass it as delimited_files=[path] (the file must lie in the"
            " API's project directory or a source_roots folder)"
        )
    return body


def _path(path: PathLike) -> str:
    """Return an ``s3://`` URL as given, a local path made absolute from the current directory."""
    text = os.fspath(path)
    return text if text.startswith("s3://") else str(Path(text).resolve())


def _say(line: str) -> None:
    print(line, file=sys.stderr)
