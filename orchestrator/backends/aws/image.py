"""The image of an API on AWS: the docker backend's API image on a base with boto3, in ECR.

boto3 is added to the base image once (``with_boto3``), from wheels downloaded on this host
(``pip download``, cached in the home), so the build needs no package index, as the base
image's does not; each API image is then built on it as the docker backend builds one. With
``aws_image_registry=""`` the local tag is used as is (an emulator running the containers
on this engine); with ``ecr`` the image is pushed to the home's ECR repository.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.aws import Clients, Names, explain
from orchestrator.backends.images.api_image import ImageBuildError
from orchestrator.backends.images.base_image import WORKER_UID
from orchestrator.errors import InvalidRequest

#: What the runtime's SQS transport needs on top of the API image.
PACKAGES = ("boto3",)


def _dockerfile(base: str) -> str:
    return (
        f"FROM {base}\n"
        "USER root\n"
        "COPY wheels /tmp/aws-wheels\n"
        "RUN python3 -m pip install --no-index --find-links /tmp/aws-wheels --no-cache-dir"
        " --root-user-action=ignore --disable-pip-version-check " + " ".join(PACKAGES) + ""
        " && rm -rf /tmp/aws-wheels\n"
        f"USER {WORKER_UID}:{WORKER_UID}\n"
        "LABEL cortex-tui.image=aws-base\n"
    )


def wheels(cache: Path) -> Path:
    """Return a folder of the wheels of ``PACKAGES``, downloading them once.

    They are downloaded into a folder of their own and renamed into place whole, so that
    another orchestrator deploying at the same time never builds from half a download.
    """
    folder = cache / "aws-wheels"
    if folder.is_dir() and any(folder.glob("boto3-*.whl")):
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    download = Path(tempfile.mkdtemp(prefix=".aws-wheels-", dir=cache))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--only-binary=:all:", "--dest", str(download), *PACKAGES],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise ImageBuildError(
                f"downloading {', '.join(PACKAGES)} for AWS images failed: {done.stderr}"
            )
        if not any(folder.glob("boto3-*.whl")):  # none yet, or half of an older version's
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):  # another process renamed its download first
                download.rename(folder)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return folder


def with_boto3(client: Any, base: str, cache: Path) -> str:
    """Return the tag of ``base`` plus boto3, building it once per base and wheel set."""
    import docker.errors

    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound:
        raise ImageBuildError(
            f'the base image "{base}" is not on this Docker engine: build the default one with'
            " `cortex-tui image build-base`, or name another in predictor.image"
        ) from None
    folder = wheels(cache)
    context = io.BytesIO()
    digest = hashlib.sha256(base_id.encode())
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = _dockerfile(base).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for wheel in sorted(folder.glob("*.whl")):
            tar.add(wheel, arcname=f"wheels/{wheel.name}")
            digest.update(wheel.name.encode())
    tag = f"cortex-tui/aws-base:{digest.hexdigest()[:16]}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context.seek(0)
    try:
        for chunk in client.api.build(
            fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, decode=True
        ):
            if "error" in chunk:
                raise ImageBuildError(f"adding boto3 to {base} failed: {chunk['error']}")
    except docker.errors.DockerException as e:
        raise ImageBuildError(f"adding boto3 to {base} failed: {e}") from e
    return tag


def push(client: Any, clients: Clients, names: Names, local_tag: str, registry: str) -> str:
    """Push the image to ``registry`` (``ecr``: the home's repository); return what to run.

    An empty registry keeps the local tag (for emulators that run containers locally).
    """
    if not registry:
        return local_tag
    if registry != "ecr":
        raise InvalidRequest(
            f'aws_image_registry "{registry}": expected "ecr" (the home\'s ECR repository)'
            ' or "" (the local image tag, for emulators)'
        )
    ecr = clients("ecr")
    try:
        repo = ecr.describe_repositories(repositoryNames=[names.repository])["repositories"][0]
        auth = ecr.get_authorization_token()["authorizationData"][0]
    except Exception as e:
        raise explain(e, f"finding the ECR repository {names.repository}") from None
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    target = f"{repo['repositoryUri']}:{local_tag.rsplit('/', 1)[-1].replace(':', '-')}"
    client.images.get(local_tag).tag(target)
    client.login(username=user, password=password, registry=auth["proxyEndpoint"])
    for line in client.images.push(target, stream=True, decode=True):
        if "error" in line:
            raise ImageBuildError(f"pushing {target} to ECR failed: {line['error']}")
    return target
