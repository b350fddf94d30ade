"""``setup``, ``status`` and ``teardown`` over the home's resources, one line each."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.aws import error_code, explain
from orchestrator.backends.aws.provision.batch import ComputeEnvironment, JobQueue
from orchestrator.backends.aws.provision.home import Home, ProvisionError, Resource
from orchestrator.backends.aws.provision.roles import roles
from orchestrator.backends.aws.provision.storage import Bucket, LogGroup, Repository

#: Batch job states that still hold (or will hold) compute.
ACTIVE_JOB_STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
_SETUP = "run `cortex-tui aws setup`"


def resources(
    home: Home, gpu: bool = False, max_vcpus: int | None = None, everything: bool = False
) -> list[Resource]:
    """Return the home's resources in the order setup makes them (teardown: reversed).

    ``everything`` adds what this configuration does not use but an earlier one may have
    left (an EC2 instance role, a compute environment beside ``aws_job_queue``).
    """
    role = roles(home)
    compute = ComputeEnvironment(home, role["batch"], role["instance"], gpu, max_vcpus)
    found: list[Resource] = [Bucket(home), Repository(home), LogGroup(home)]
    found += [role["batch"], role["exec"], role["job"]]
    if everything or compute.on_ec2():
        found.append(role["instance"])
    if everything or not home.names.job_queue_setting:
        found.append(compute)
    found.append(JobQueue(home, compute))
    return found


@dataclass
class Activity:
    """What of a home runs on AWS: Batch jobs not yet ended, and its jobs' SQS queues."""

    batch_jobs: list[dict[str, Any]]
    queue_urls: list[str]

    @classmethod
    def of(cls, home: Home, job_queue: JobQueue) -> Activity:
        """Look up the home's active Batch jobs (on its job queue) and SQS queues."""
        prefix = f"{home.names.prefix}-"
        batch, sqs = home.clients("batch"), home.clients("sqs")
        jobs: list[dict[str, Any]] = []
        if job_queue.exists():
            for state in ACTIVE_JOB_STATES:
                pages = batch.get_paginator("list_jobs").paginate(
                    jobQueue=job_queue.name, jobStatus=state
                )
                jobs += [j for p in pages for j in p["jobSummaryList"]
                         if j["jobName"].startswith(prefix)]  # fmt: skip
        urls = [
            url
            for page in sqs.get_paginator("list_queues").paginate(
                QueueNamePrefix=prefix, MaxResults=1000
            )
            for url in page.get("QueueUrls", [])
        ]
        return cls(jobs, urls)

    def __bool__(self) -> bool:
        return bool(self.batch_jobs or self.queue_urls)

    def describe(self) -> str:
        """Return e.g. ``1 Batch job (ctui-x-w1 RUNNING), 2 SQS queues (a, b)``."""
        jobs = [f"{j['jobName']} {j.get('status', '')}".strip() for j in self.batch_jobs]
        queues = [url.rsplit("/", 1)[-1] for url in self.queue_urls]
        return ", ".join(
            f"{len(names)} {what}{'s' if len(names) != 1 else ''} ({', '.join(names)})"
            for what, names in (("Batch job", jobs), ("SQS queue", queues))
            if names
        )

    def end(self, home: Home) -> None:
        """Terminate the Batch jobs and delete the SQS queues (``teardown --force``)."""
        for job in self.batch_jobs:
            home.clients("batch").terminate_job(
                jobId=job["jobId"], reason="cortex-tui aws teardown --force"
            )
            report("Batch job", job["jobName"], "terminated")
        for url in self.queue_urls:
            try:
                home.clients("sqs").delete_queue(QueueUrl=url)
            except ClientError as e:
                if "NonExistentQueue" not in error_code(e):
                    raise
            report("SQS queue", url.rsplit("/", 1)[-1], "deleted")


def deregister_job_definitions(home: Home) -> int:
    """Deregister the home's active Batch job definitions (the backend's); return how many."""
    batch, prefix = home.clients("batch"), f"{home.names.prefix}-"
    count = 0
    for page in batch.get_paginator("describe_job_definitions").paginate(status="ACTIVE"):
        for definition in page["jobDefinitions"]:
            if definition["jobDefinitionName"].startswith(prefix):
                batch.deregister_job_definition(jobDefinition=definition["jobDefinitionArn"])
                count += 1
    return count


def report(label: str, name: str, outcome: str) -> None:
    """Print one line about one resource."""
    print(f"{label:<26} {name:<30} {outcome}", flush=True)


@contextlib.contextmanager
def doing(what: str) -> Iterator[None]:
    """Turn an AWS error in the block into a user-facing one that says what was being done."""
    try:
        yield
    except (BotoCoreError, ClientError) as e:
        raise explain(e, what) from None


def setup(home: Home, args: argparse.Namespace) -> int:
    """Make each missing resource, bring existing ones in line, and report each."""
    with doing("looking up the compute environment"):
        found = resources(home, args.gpu, args.max_vcpus)
        for resource in found:
            if isinstance(resource, ComputeEnvironment):
                resource.check_kind()
    for resource in found:  # the user's own must all be there before anything is made
        if resource.setting:
            with doing(f"looking up {resource.label} {resource.name}"):
                _check_yours(resource)
    for resource in found:
        with doing(f"setting up {resource.label} {resource.name}"):
            report(resource.label, resource.name, _set_up(resource))
    print(f"ready: the aws backend of this home can run workers in {home.region}")
    return 0


def _check_yours(resource: Resource) -> None:
    """Refuse a resource a setting names (the user's own) that does not exist."""
    if not resource.exists():
        raise ProvisionError(
            f"{resource.label} {resource.name} (--set {resource.setting}) does not exist"
            f" in {resource.home.region}: create it, or leave {resource.setting} unset"
            " to have setup make one; nothing was set up"
        )


def _set_up(resource: Resource) -> str:
    if resource.setting:
        _check_yours(resource)
        return f"yours ({resource.setting}), used as is"
    if resource.exists():
        changed = resource.reconcile()
        return f"already there ({changed})" if changed else "already there"
    resource.create()
    return "created"


def status(home: Home, args: argparse.Namespace) -> int:
    """Report each resource and what runs; return 1 when something is missing."""
    missing = 0
    with doing("looking up the home's resources"):
        found = resources(home)
        for resource in found:
            present = resource.exists()
            missing += not present
            mine = f" (yours: {resource.setting})" if resource.setting else ""
            report(resource.label, resource.name, ("present" if present else "missing") + mine)
        active = Activity.of(home, _job_queue(found))
    print(f"running: {active.describe() or 'nothing'}")
    if missing:
        print(f"{missing} missing: {_SETUP}")
        return 1
    return 0


def teardown(home: Home, args: argparse.Namespace) -> int:
    """Delete everything setup made, once nothing runs (or ending what runs, with --force)."""
    with doing("looking up what runs"):
        found = resources(home, everything=True)
        active = Activity.of(home, _job_queue(found))
    if active and not args.force:
        print(
            f"error: not tearing down while this home runs on AWS: {active.describe()}; stop"
            " its jobs (cortex-tui delete API JOB_ID) or let them end, or rerun with --force"
            " to end them",
            file=sys.stderr,
        )
        return 1
    with doing("ending the home's Batch jobs and SQS queues"):
        active.end(home)
    with doing("deregistering the home's Batch job definitions"):
        if count := deregister_job_definitions(home):
            report("Batch job definitions", f"{home.names.prefix}-*", f"{count} deregistered")
    deleted = 0
    for resource in reversed(found):
        with doing(f"deleting {resource.label} {resource.name}"):
            if resource.setting:
                outcome = f"kept (yours: {resource.setting})"
            elif resource.exists():
                resource.delete()
                deleted += 1
                outcome = "deleted"
            else:
                outcome = "not there"
        report(resource.label, resource.name, outcome)
    if deleted:
        print(f"done: {deleted} resources deleted; nothing setup made is left on AWS")
    else:
        print("nothing to delete: nothing setup made is left on AWS")
    return 0


def _job_queue(found: list[Resource]) -> JobQueue:
    return next(r for r in found if isinstance(r, JobQueue))


COMMANDS: dict[str, Callable[[Home, argparse.Namespace], int]] = {
    "setup": setup,
    "status": status,
    "teardown": teardown,
}
