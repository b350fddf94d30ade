"""The home's Batch compute environment and job queue, which change state asynchronously."""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.aws import error_code
from orchestrator.backends.aws.provision.home import Home, ProvisionError, Resource, wait_for
from orchestrator.backends.aws.provision.roles import Role

DEFAULT_MAX_VCPUS = 16
GPU_INSTANCE_TYPES = ("g4dn", "g5")
#: How long a new IAM role may take to become usable by Batch.
IAM_PROPAGATION_S = 90.0
#: The statuses of a change under way (the next call must wait for it).
_BUSY = ("CREATING", "UPDATING", "DELETING")


class BatchResource(Resource):
    """A compute environment or job queue: Batch changes them asynchronously."""

    @abstractmethod
    def describe(self) -> dict[str, Any] | None:
        """Return its description, or None when there is none (or only a DELETED one)."""

    @abstractmethod
    def _update(self, **changes: Any) -> None: ...

    @abstractmethod
    def _delete(self) -> None: ...

    def exists(self) -> bool:
        found = self.describe()
        return found is not None and found["status"] != "DELETING"

    def settled(self) -> dict[str, Any] | None:
        """Wait until no change is under way; return the description (None once deleted)."""
        wait_for(f"{self.label} {self.name} to settle", lambda: self._status() not in _BUSY)
        return self.describe()

    def _status(self) -> str:
        found = self.describe()
        return "" if found is None else str(found["status"])

    def valid(self) -> dict[str, Any]:
        """Wait until it is settled and VALID; return its description."""
        found = self.settled()
        if found is None or found["status"] != "VALID":
            reason = found.get("statusReason", "") if found else "it disappeared"
            raise ProvisionError(
                f"{self.label} {self.name} is not valid ({reason}): `cortex-tui aws teardown`,"
                " then setup again"
            )
        return found

    def delete(self) -> None:
        found = self.settled()
        if found is not None and found["state"] == "ENABLED":
            self._update(state="DISABLED")
            self.settled()
        self._delete()
        self.settled()

    def _prepare_create(self) -> None:
        """Wait out the deletion of an earlier one of the same name."""
        if self.describe() is not None:
            self.settled()

    def _enable(self, found: dict[str, Any]) -> str:
        if found["state"] == "ENABLED":
            return ""
        self._update(state="ENABLED")
        self.valid()
        return "enabled again"


class ComputeEnvironment(BatchResource):
    """The managed compute environment: Fargate, or EC2 GPU instances; idles at 0 vCPUs."""

    label = "Batch compute environment"

    def __init__(
        self, home: Home, service_role: Role, instance_role: Role, gpu: bool, max_vcpus: int | None
    ) -> None:
        super().__init__(home, home.names.compute_environment)
        self.batch = home.clients("batch")
        self.service_role, self.instance_role = service_role, instance_role
        self.gpu, self.max_vcpus = gpu, max_vcpus

    def describe(self) -> dict[str, Any] | None:
        found = self.batch.describe_compute_environments(computeEnvironments=[self.name])
        live = [c for c in found["computeEnvironments"] if c.get("status") != "DELETED"]
        return live[0] if live else None

    def on_ec2(self) -> bool:
        """Return whether it runs on EC2 instances (--gpu, or an existing EC2 one)."""
        if self.gpu:
            return True
        found = self.describe()
        return found is not None and found["computeResources"]["type"] in ("EC2", "SPOT")

    def create(self) -> None:
        self._prepare_create()
        params = {
            "computeEnvironmentName": self.name,
            "type": "MANAGED",
            "state": "ENABLED",
            "computeResources": self._resources(),
            "serviceRole": self.service_role.arn,
            "tags": self.home.tags,
        }
        deadline = time.monotonic() + IAM_PROPAGATION_S
        while True:
            try:
                self.batch.create_compute_environment(**params)
                break
            except ClientError as e:
                # IAM is eventually consistent: a role made seconds ago may not be usable yet.
                message = str(e).lower()
                iam = "role" in message or "instance profile" in message
                if error_code(e) != "ClientException" or not iam or time.monotonic() > deadline:
                    raise
                time.sleep(5)
        self.valid()

    def _resources(self) -> dict[str, Any]:
        subnets, groups = default_network(self.home)
        resources: dict[str, Any] = {
            "maxvCpus": self.max_vcpus or DEFAULT_MAX_VCPUS,
            "subnets": subnets,
            "securityGroupIds": groups,
        }
        if not self.gpu:  # Fargate has no minimum: it is 0 by nature
            return {"type": "FARGATE", **resources}
        return {
            "type": "EC2",
            "allocationStrategy": "BEST_FIT_PROGRESSIVE",
            "minvCpus": 0,
            "desiredvCpus": 0,
            "instanceTypes": list(GPU_INSTANCE_TYPES),
            "instanceRole": self.instance_role.profile_arn,
            "tags": self.home.tags,
            **resources,
        }

    def check_kind(self) -> None:
        """Refuse --gpu while the existing compute environment is a Fargate one."""
        found = self.describe()
        kind = found["computeResources"]["type"] if found else ""
        if self.gpu and kind.startswith("FARGATE"):
            raise ProvisionError(
                f"{self.label} {self.name} runs on {kind}, and --gpu needs EC2 instances: run"
                " `cortex-tui aws teardown`, then `cortex-tui aws setup --gpu`"
            )

    def reconcile(self) -> str:
        found = self.valid()
        notes = [self._enable(found)]
        current = found["computeResources"].get("maxvCpus")
        if self.max_vcpus is not None and current != self.max_vcpus:
            self._update(computeResources={"maxvCpus": self.max_vcpus})
            self.valid()
            notes.append(f"maxvCpus {current} -> {self.max_vcpus}")
        return ", ".join(n for n in notes if n)

    def _update(self, **changes: Any) -> None:
        self.batch.update_compute_environment(computeEnvironment=self.name, **changes)

    def _delete(self) -> None:
        self.batch.delete_compute_environment(computeEnvironment=self.name)


class JobQueue(BatchResource):
    """The Batch job queue workers are submitted to (the home's, or ``aws_job_queue``)."""

    label = "Batch job queue"

    def __init__(self, home: Home, compute: ComputeEnvironment) -> None:
        setting = "aws_job_queue" if home.names.job_queue_setting else ""
        super().__init__(home, home.names.job_queue, setting)
        self.batch = home.clients("batch")
        self.compute = compute

    def describe(self) -> dict[str, Any] | None:
        found = self.batch.describe_job_queues(jobQueues=[self.name])["jobQueues"]
        live = [q for q in found if q.get("status") != "DELETED"]
        return live[0] if live else None

    def create(self) -> None:
        self._prepare_create()
        compute = self.compute.valid()["computeEnvironmentArn"]
        self.batch.create_job_queue(
            jobQueueName=self.name,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute}],
            tags=self.home.tags,
        )
        self.valid()

    def reconcile(self) -> str:
        return self._enable(self.valid())

    def _update(self, **changes: Any) -> None:
        self.batch.update_job_queue(jobQueue=self.name, **changes)

    def _delete(self) -> None:
        self.batch.delete_job_queue(jobQueue=self.name)


def default_network(home: Home) -> tuple[list[str], list[str]]:
    """Return the subnets and default security group of the region's default VPC."""
    ec2 = home.clients("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise ProvisionError(
            f"region {home.region} has no default VPC for the compute environment: create one"
            f" (aws ec2 create-default-vpc --region {home.region})"
        )
    in_vpc = {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[in_vpc])["Subnets"]]
    groups = ec2.describe_security_groups(
        Filters=[in_vpc, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return subnets, [g["GroupId"] for g in groups]
