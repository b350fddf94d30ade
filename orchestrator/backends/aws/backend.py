"""Workers on AWS Batch: one Batch job per worker, talking over SQS and S3.

The orchestrator stays where the user is (AWS cannot reach it): workers use the queue
transport (``runtime.sqs_transport``; the orchestrator's side is ``delivery.sqs``). One
Batch job per worker, not an array job, maps onto start/probe/stop one to one: a
replacement keeps its slot and each worker has its own exit code. A worker's CloudWatch
stream is copied into its log file (``logs.LogCopier``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.aws import HOME_TAG_KEY, Clients, Names, explain, setup_hint
from orchestrator.backends.aws import image
from orchestrator.backends.aws.logs import LogCopier
from orchestrator.backends.base import Backend, WorkerLaunch, WorkerProbe
from orchestrator.backends.images.api_image import APP_DIR, ImageBuilder
from orchestrator.backends.images.base_image import cache_dir, default_tag
from orchestrator.errors import BackendError, InvalidRequest
from orchestrator.settings import Settings

#: Batch job states of a worker that has not ended.
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
#: AWS Batch's own floor on ``attemptDurationSeconds``.
MIN_ATTEMPT_S = 60
#: The environment a worker gets from the orchestrator's, so it reaches the same endpoints.
_FORWARDED = ("AWS_ENDPOINT_URL",)


class AwsBackend(Backend):
    """Each worker is an AWS Batch job of the API's job definition."""

    name = "aws"
    remote = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.clients = Clients(settings)
        self.names = Names.of(settings)
        self._definitions: dict[str, str] = {}  # project dir -> job definition ARN
        self._listing: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._docker: Any = None
        self.logs = LogCopier(self.clients, self.names)

    # --- APIs ----------------------------------------------------------------------------

    def prepare_api(self, api_spec: dict[str, Any], project_dir: Path) -> dict[str, Any]:
        """Build the API's image (plus boto3), push it, register its job definition."""
        self.check_job(api_spec)
        docker = self._engine()
        builder = ImageBuilder(docker, self.settings.builds_dir)
        base = api_spec.get("predictor", {}).get("image") or self.settings.docker_base_image
        with_boto3 = image.with_boto3(docker, str(base or default_tag()), cache_dir())
        built = builder.ensure(api_spec["name"], project_dir, with_boto3)
        registry = self.settings.aws_image_registry
        runs = image.push(docker, self.clients, self.names, built.tag, registry)
        arn = self._register(api_spec, runs)
        self._definitions[str(project_dir)] = arn
        return {
            "image": runs,
            "image_built": built.built,
            "image_build_s": round(built.seconds, 2),
            "image_build_log": str(built.log_path) if built.log_path else None,
            "job_definition": arn,
        }

    def check_job(self, api_spec: dict[str, Any]) -> None:
        """Refuse what cannot run: no credentials or region, missing resources, GPU on Fargate,
        more than Fargate's largest task (before any image is built)."""
        try:
            account = self.clients.account()
            region = self.clients.region
            batch = self.clients("batch")
            queues = batch.describe_job_queues(jobQueues=[self.names.job_queue])["jobQueues"]
        except Exception as e:
            raise explain(e, "checking the AWS backend") from None
        if not queues:
            raise InvalidRequest(
                f"the AWS Batch job queue {self.names.job_queue} does not exist in"
                f" {region}: {setup_hint()}"
            )
        try:
            self.clients("s3").head_bucket(Bucket=self.names.bucket(account))
        except Exception as e:
            raise InvalidRequest(
                f"the S3 bucket {self.names.bucket(account)} is missing or not yours"
                f" ({type(e).__name__}): {setup_hint()}"
            ) from None
        gpu = int(api_spec.get("compute", {}).get("gpu") or 0)
        if gpu and self._fargate(queues[0]):
            raise InvalidRequest(
                f"compute.gpu: {gpu}: the job queue {self.names.job_queue} runs on Fargate,"
                " which has no GPUs: for EC2 GPU instances run `cortex-tui aws teardown`, then"
                " `cortex-tui aws setup --gpu`; or set compute.gpu: 0"
            )
        _resources(api_spec.get("compute", {}))  # a size Batch can run (Fargate's, with no GPU)

    def _fargate(self, queue: dict[str, Any]) -> bool:
        order = queue.get("computeEnvironmentOrder") or []
        arns = [entry["computeEnvironment"] for entry in order]
        if not arns:
            return True
        environments = self.clients("batch").describe_compute_environments(
            computeEnvironments=arns
        )["computeEnvironments"]
        kinds = {e.get("computeResources", {}).get("type", "") for e in environments}
        return all(kind.startswith("FARGATE") for kind in kinds)

    def _register(self, api_spec: dict[str, Any], runs: str) -> str:
        """Register the API version's job definition; return its ARN."""
        gpu = int(api_spec.get("compute", {}).get("gpu") or 0)
        properties = self._container_properties(runs, _resources(api_spec.get("compute", {})))
        if not gpu:
            properties["networkConfiguration"] = {"assignPublicIp": "ENABLED"}
            properties["fargatePlatformConfiguration"] = {"platformVersion": "LATEST"}
        try:
            answer = self.clients("batch").register_job_definition(
                jobDefinitionName=self.names.job_definition(api_spec["name"]),
                type="container",
                containerProperties=properties,
                platformCapabilities=["EC2" if gpu else "FARGATE"],
                tags={HOME_TAG_KEY: self.names.tag},
                propagateTags=True,
            )
        except Exception as e:
            raise explain(e, "registering the API's AWS Batch job definition") from None
        return str(answer["jobDefinitionArn"])

    def _container_properties(self, runs: str, resources: list[dict[str, str]]) -> dict[str, Any]:
        """Return a worker container's definition: image, roles, resources, env, logs."""
        return {
            "image": runs,
            "command": ["python3", "-m", "runtime", "--project", APP_DIR],
            "jobRoleArn": self._role_arn("job"),
            "executionRoleArn": self._role_arn("exec"),
            "resourceRequirements": resources,
            "environment": [{"name": k, "value": v} for k, v in sorted(self._worker_env().items())],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": self.names.log_group},
            },
            "user": "10001",
            "readonlyRootFilesystem": False,
            "linuxParameters": {"initProcessEnabled": True},
        }

    def _role_arn(self, kind: str) -> str:
        """Return the ARN of one of the home's IAM roles (``aws setup`` makes them)."""
        try:
            return str(self.clients("iam").get_role(RoleName=self.names.role(kind))["Role"]["Arn"])
        except Exception as e:
            raise InvalidRequest(
                f"the IAM roles of this home are missing ({type(e).__name__}): {setup_hint()}"
            ) from None

    def _worker_env(self) -> dict[str, str]:
        """Return the environment every worker gets: region, endpoints, ``aws_worker_env``."""
        import os

        env = {"AWS_DEFAULT_REGION": self.clients.region, "PYTHONUNBUFFERED": "1"}
        for key, value in os.environ.items():
            if key.startswith(_FORWARDED):
                env[key] = value
        for pair in self.settings.aws_worker_env.split(","):
            key, sep, value = pair.partition("=")
            if sep and key.strip():
                env[key.strip()] = value
        return env

    def _engine(self) -> Any:
        if self._docker is None:
            import docker

            try:
                self._docker = docker.from_env()
                self._docker.ping()
            except docker.errors.DockerException as e:
                self._docker = None
                raise BackendError(
                    f"the aws backend builds API images with Docker, and cannot reach it: {e}"
                ) from e
        return self._docker

    # --- workers -------------------------------------------------------------------------

    def start_worker(self, launch: WorkerLaunch) -> dict[str, Any]:
        """Submit the worker's Batch job (named ``ctui-<home>-<worker_id>``)."""
        definition = self._definitions.get(str(launch.project_dir))
        if definition is None:  # after a restart: register (and build if needed) again
            self.prepare_api(launch.api_spec, launch.project_dir)
            definition = self._definitions[str(launch.project_dir)]
        limit = self.settings.aws_max_worker_s
        if launch.timeout_s is not None:
            limit = launch.timeout_s + self.settings.stop_grace_s
        attempt_s = max(MIN_ATTEMPT_S, int(limit))
        env = [{"name": k, "value": v} for k, v in sorted(launch.env.items())]
        name = self.names.batch_job(launch.worker_id)
        try:
            answer = self.clients("batch").submit_job(
                jobName=name,
                jobQueue=self.names.job_queue,
                jobDefinition=definition,
                containerOverrides={
                    "command": [
                        *("python3", "-m", "runtime", "--transport", launch.transport),
                        *("--worker", launch.worker_id, "--project", APP_DIR),
                    ],
                    "environment": env,
                },
                timeout={"attemptDurationSeconds": attempt_s},
                tags={HOME_TAG_KEY: self.names.tag, "cortex-tui-job": launch.job_id},
            )
        except Exception as e:
            raise explain(e, f"submitting worker {launch.worker_id} to AWS Batch") from None
        handle = {
            "batch_job_id": answer["jobId"],
            "batch_job": name,
            "job_id": launch.job_id,
            "log_path": str(launch.log_path),
        }
        self.logs.follow(handle)
        return handle

    def probe_worker(self, handle: dict[str, Any]) -> WorkerProbe:
        """Read the worker's Batch job from one cached ListJobs per job and tick."""
        summary = self._summaries(str(handle["job_id"])).get(str(handle["batch_job_id"]))
        if summary is None:
            summary = self._describe(str(handle["batch_job_id"]))
        if summary is None:
            return WorkerProbe(alive=False, message=f"Batch job {handle['batch_job']} disappeared")
        self.logs.follow(handle)
        status = summary.get("status")
        if status in ACTIVE:
            return WorkerProbe(alive=True, starting=status in ("STARTING", "RUNNING"))
        self.logs.finish(handle)
        return ended_probe(summary)

    def _summaries(self, job_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            cached = self._listing.get(job_id)
            if cached is not None and time.monotonic() - cached[0] < self.settings.tick_s:
                return cached[1]
        prefix = self.names.batch_job(f"{job_id}-")
        found: dict[str, dict[str, Any]] = {}
        try:
            pages = (
                self.clients("batch")
                .get_paginator("list_jobs")
                .paginate(
                    jobQueue=self.names.job_queue,
                    filters=[{"name": "JOB_NAME", "values": [f"{prefix}*"]}],
                )
            )
            for page in pages:
                for summary in page.get("jobSummaryList", []):
                    found[summary["jobId"]] = summary
        except Exception as e:
            if "does not exist" not in str(e):
                raise explain(e, "listing the job's AWS Batch jobs") from None
            # The job queue is gone (aws teardown --force): each worker is described alone.
        with self._lock:
            self._listing[job_id] = (time.monotonic(), found)
        return found

    def _describe(self, batch_job_id: str) -> dict[str, Any] | None:
        try:
            jobs = self.clients("batch").describe_jobs(jobs=[batch_job_id])["jobs"]
        except Exception as e:
            if "does not exist" in str(e):
                return None  # its queue went with it: the worker is gone
            raise explain(e, "describing an AWS Batch job") from None
        return jobs[0] if jobs else None

    def stop_worker(self, handle: dict[str, Any], grace_s: float) -> None:
        """Terminate the Batch job after ``grace_s`` (the worker stops on its own when its job
        ends: ``control.json`` says so)."""
        timer = threading.Timer(grace_s, self._terminate, args=(handle, "stopped by cortex-tui"))
        timer.daemon = True
        timer.start()

    def _terminate(self, handle: dict[str, Any], reason: str) -> None:
        summary = self._describe(str(handle["batch_job_id"]))
        if summary is None or summary.get("status") not in ACTIVE:
            return
        try:
            self.clients("batch").terminate_job(jobId=handle["batch_job_id"], reason=reason)
        except Exception as e:  # the next tick probes it again
            explain(e, "terminating an AWS Batch job")

    def find_leftovers(self) -> list[dict[str, Any]]:
        """Return this home's Batch jobs that still run (by name prefix)."""
        prefix = f"{self.names.prefix}-"
        found = []
        try:
            for status in ACTIVE:
                pages = (
                    self.clients("batch")
                    .get_paginator("list_jobs")
                    .paginate(jobQueue=self.names.job_queue, jobStatus=status)
                )
                for page in pages:
                    for summary in page.get("jobSummaryList", []):
                        name = str(summary["jobName"])
                        if name.startswith(prefix):
                            found.append(
                                {
                                    "batch_job_id": summary["jobId"],
                                    "batch_job": name,
                                    "worker_id": name[len(prefix) :],
                                }
                            )
        except Exception:
            return []  # no queue (never set up): nothing can be left
        return found

    def discard_worker(self, handle: dict[str, Any]) -> None:
        """Terminate a Batch job no recorded worker owns."""
        self._terminate(handle, "a leftover of an earlier cortex-tui run")

    def close(self) -> None:
        """Stop copying logs."""
        self.logs.close()
        if self._docker is not None:
            self._docker.close()


def ended_probe(summary: dict[str, Any]) -> WorkerProbe:
    """Return what an ended Batch job says: its exit code, OOM, or Batch's reason.

    ListJobs summaries carry ``container.exitCode`` (moto's DescribeJobs lacks it);
    ``container.reason`` starting ``OutOfMemoryError`` is an OOM kill.
    """
    container = summary.get("container") or {}
    code = container.get("exitCode")
    reason = str(container.get("reason") or "")
    stopped = summary.get("stoppedAt")
    ended_at = stopped / 1000 if isinstance(stopped, int | float) else None
    if reason.startswith("OutOfMemoryError"):
        return WorkerProbe(
            alive=False, exit_code=code, oom=True, message=f"was killed by AWS Batch: {reason}",
            ended_at=ended_at,
        )  # fmt: skip
    if summary.get("status") == "SUCCEEDED":
        return WorkerProbe(alive=False, exit_code=0 if code is None else code, ended_at=ended_at)
    worker = str(summary.get("jobName", "")).rsplit("-", 1)[-1]
    why = summary.get("statusReason") or reason or "no reason given"
    ended = "ended with no exit code" if code is None else f"exited with code {code}"
    return WorkerProbe(
        alive=False,
        exit_code=code,
        message=f"worker {worker} {ended} (AWS Batch job {summary.get('jobName')}: {why})",
        ended_at=ended_at,
    )


#: Fargate's task sizes: vCPUs -> (smallest, largest, step) memory in MiB.
FARGATE_SIZES = {
    0.25: (512, 2048, 512),
    0.5: (1024, 4096, 1024),
    1.0: (2048, 8192, 1024),
    2.0: (4096, 16384, 1024),
    4.0: (8192, 30720, 1024),
    8.0: (16384, 61440, 4096),
    16.0: (32768, 122880, 8192),
}


def _resources(compute: dict[str, Any]) -> list[dict[str, str]]:
    """Return Batch's resource requirements for ``compute`` (Fargate sizes when no GPU)."""
    gpu = int(compute.get("gpu") or 0)
    cpu = float(compute.get("cpu") or 1)
    mem_mib = -(-int(compute.get("mem") or 2 << 30) // (1 << 20))
    if not gpu:  # Fargate takes only some sizes: the smallest that holds what was asked
        cpu, mem_mib = fargate_size(cpu, mem_mib)
    resources = [
        {"type": "VCPU", "value": f"{cpu:g}"},
        {"type": "MEMORY", "value": str(mem_mib)},
    ]
    if gpu:
        resources.append({"type": "GPU", "value": str(gpu)})
    return resources


def fargate_size(cpu: float, mem_mib: int) -> tuple[float, int]:
    """Return the smallest Fargate size with at least ``cpu`` vCPUs and ``mem_mib`` MiB.

    Raises:
        InvalidRequest: More than Fargate's largest size was asked for.
    """
    for vcpus, (low, high, step) in FARGATE_SIZES.items():
        if vcpus >= cpu and mem_mib <= high:
            memory = max(low, mem_mib)
            return vcpus, low + -(-(memory - low) // step) * step
    raise InvalidRequest(
        f"compute: {cpu:g} vCPU and {mem_mib} MiB is more than Fargate's largest task (16 vCPU,"
        " 120 GiB): ask for less, or run `cortex-tui aws setup --gpu` for EC2 instances"
    )
