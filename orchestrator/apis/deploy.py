"""Deploying APIs. Each version runs from an immutable snapshot."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.apis import snapshot
from orchestrator.apis.spec import ApiSpec, load_cortex_yaml
from orchestrator.context import Context
from orchestrator.errors import ApiSpecError, InvalidRequest
from orchestrator.store import api_queries
from orchestrator.store.models import Api

_DEPLOY_KEYS = ("project_dir", "config_file")
#: The longest project_dir or config_file a deploy takes (Linux's PATH_MAX).
MAX_PATH_CHARS = 4096


def _why(error: OSError | RuntimeError) -> str:
    return getattr(error, "strerror", None) or str(error)


def deploy(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """Deploy every API of a project's ``cortex.yaml``: created, updated or up to date."""
    for key in body:
        if key not in _DEPLOY_KEYS:
            raise InvalidRequest(f'unknown field "{key}" (known: {", ".join(_DEPLOY_KEYS)})')
    project = body.get("project_dir")
    if not isinstance(project, str) or not project.startswith("/"):
        raise InvalidRequest("project_dir: give the absolute path of the project directory")
    if "\0" in project:
        raise InvalidRequest("project_dir: holds a NUL character")
    if len(project) > MAX_PATH_CHARS:
        raise InvalidRequest(f"project_dir: longer than {MAX_PATH_CHARS} characters")
    config_file = body.get("config_file", "cortex.yaml")
    if not isinstance(config_file, str) or not config_file or len(config_file) > MAX_PATH_CHARS:
        raise InvalidRequest("config_file: must be a file name inside the project directory")
    try:
        project_dir = Path(project).resolve(strict=True)
        if not project_dir.is_dir():
            raise ApiSpecError(f"{project_dir}: not a directory")
    except FileNotFoundError:
        raise ApiSpecError(f"project_dir: {project}: no such directory") from None
    except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
        raise ApiSpecError(f"project_dir: {project}: cannot be opened ({_why(e)})") from None
    specs = load_cortex_yaml(project_dir, config_file)
    listing = snapshot.scan(project_dir, ctx.settings.max_project_bytes)
    files_digest = snapshot.digest(listing)
    return {"apis": [_deploy_one(ctx, spec, listing, files_digest) for spec in specs]}


def _deploy_one(
    ctx: Context, spec: ApiSpec, listing: snapshot.Listing, files_digest: str
) -> dict[str, Any]:
    project_dir = listing.root
    spec_dict = spec.to_dict()
    backend = spec.backend or ctx.settings.backend
    api_id = hashlib.sha256(
        f"{files_digest}\n{json.dumps(spec_dict, sort_keys=True)}\n{backend}".encode()
    ).hexdigest()[:16]
    destination = ctx.settings.apis_dir / spec.name / api_id
    with _deploying(ctx, destination):
        if not destination.exists():
            snapshot.copy(listing, destination)
        prepared = ctx.backend(backend).prepare_api(spec_dict, destination) or {}
        result = _save(ctx, spec, api_id, backend, destination, project_dir)
    return {
        "name": spec.name,
        "api_id": api_id,
        "result": result,
        "backend": backend,
        "endpoint": f"{ctx.settings.url}/{spec.name}",
        **prepared,
    }


def _save(
    ctx: Context, spec: ApiSpec, api_id: str, backend: str, destination: Path, project_dir: Path
) -> str:
    """Write the API's row; return ``created`` (new, or deployed again after being
    deleted), ``updated`` or ``up_to_date``."""
    now = ctx.clock()
    with ctx.store.session() as session:
        api = api_queries.get(session, spec.name)
        if api is not None and api.deleted_time is None and api.api_id == api_id:
            return "up_to_date"
        result = "created" if api is None or api.deleted_time is not None else "updated"
        if api is None or api.deleted_time is not None:
            api = api or Api(
                name=spec.name,
                api_id=api_id,
                spec={},
                project_dir="",
                source_dir="",
                backend=backend,
                created_time=now,
                updated_time=now,
            )
            api.created_time, api.deleted_time = now, None
        api.api_id, api.spec, api.backend = api_id, spec.to_dict(), backend
        api.project_dir, api.source_dir = str(destination), str(project_dir)
        api.updated_time = now
        api_queries.save(session, api)
    return result


@contextmanager
def _deploying(ctx: Context, destination: Path) -> Iterator[None]:
    """Mark a snapshot as being deployed, so that prune does not take it meanwhile."""
    with ctx.snapshot_lock:
        ctx.deploying.add(destination)
    try:
        yield
    finally:
        with ctx.snapshot_lock:
            ctx.deploying.discard(destination)
