"""Deploying, listing and deleting APIs. Each version runs from an immutable snapshot."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from orchestrator.apispec import ApiSpec, load_cortex_yaml
from orchestrator.context import Context
from orchestrator.errors import ApiSpecError, InvalidRequest
from orchestrator.jobs import fail_job, get_api
from orchestrator.models import Api
from orchestrator.status import JobStatus

_SKIP = {".git", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache", "node_modules"}


def deploy(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """Deploy every API of a project's ``cortex.yaml``: created, updated or up to date."""
    project = body.get("project_dir")
    if not isinstance(project, str) or not project:
        raise InvalidRequest("project_dir: give the absolute path of the project directory")
    project_dir = Path(project).expanduser().resolve()
    if not project_dir.is_dir():
        raise ApiSpecError(f"{project_dir}: no such directory")
    config_file = body.get("config_file") or "cortex.yaml"
    specs = load_cortex_yaml(project_dir, str(config_file))
    files_digest = _digest_files(project_dir)
    return {"apis": [_deploy_one(ctx, spec, project_dir, files_digest) for spec in specs]}


def _deploy_one(
    ctx: Context, spec: ApiSpec, project_dir: Path, files_digest: str
) -> dict[str, Any]:
    spec_dict = spec.to_dict()
    backend = spec.backend or ctx.settings.backend
    api_id = hashlib.sha256(
        f"{files_digest}\n{json.dumps(spec_dict, sort_keys=True)}\n{backend}".encode()
    ).hexdigest()[:16]
    snapshot = ctx.settings.apis_dir / spec.name / api_id
    if not snapshot.exists():
        tmp = snapshot.with_name(snapshot.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(project_dir, tmp, ignore=shutil.ignore_patterns(*_SKIP, "*.pyc"))
        tmp.rename(snapshot)
    prepared = ctx.backend(backend).prepare_api(spec_dict, snapshot) or {}
    now = ctx.clock()
    with ctx.store.session() as session:
        api = session.get(Api, spec.name)
        if api is not None and api.api_id == api_id:
            result = "up_to_date"
        else:
            result = "created" if api is None else "updated"
            api = api or Api(
                name=spec.name,
                created_time=now,
                api_id=api_id,
                spec={},
                project_dir="",
                source_dir="",
                backend=backend,
                updated_time=now,
            )
            api.api_id, api.spec, api.backend = api_id, spec_dict, backend
            api.project_dir, api.source_dir, api.updated_time = str(snapshot), str(project_dir), now
            session.add(api)
            session.commit()
    return {
        "name": spec.name,
        "api_id": api_id,
        "result": result,
        "backend": backend,
        "endpoint": f"{ctx.settings.url}/{spec.name}",
        **prepared,
    }


def _digest_files(project_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if any(part in _SKIP for part in relative.parts) or path.suffix == ".pyc":
            continue
        if path.is_file():
            digest.update(str(relative).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def delete_api(ctx: Context, api_name: str) -> dict[str, str]:
    """Stop an API's running jobs and delete it with its jobs' records."""
    get_api(ctx, api_name)
    with ctx.store.read() as conn:
        job_ids = (
            conn.exec_driver_sql("SELECT job_id FROM job WHERE api_name = ?", (api_name,))
            .scalars()
            .all()
        )
    for job_id in job_ids:
        fail_job(ctx, job_id, JobStatus.STOPPED, f"api {api_name} was deleted")
    with ctx.store.write() as conn:
        # Live workers keep their rows until the supervisor has reaped them.
        conn.exec_driver_sql(
            "DELETE FROM worker WHERE state IN ('succeeded', 'failed') AND job_id IN"
            " (SELECT job_id FROM job WHERE api_name = ?)",
            (api_name,),
        )
        conn.exec_driver_sql(
            "DELETE FROM batch WHERE job_id IN (SELECT job_id FROM job WHERE api_name = ?)",
            (api_name,),
        )
        conn.exec_driver_sql("DELETE FROM job WHERE api_name = ?", (api_name,))
        conn.exec_driver_sql("DELETE FROM api WHERE name = ?", (api_name,))
    return {"message": f"deleted {api_name}"}
