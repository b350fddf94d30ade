"""The home's IAM roles and their least-privilege policies."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.aws import error_code
from orchestrator.backends.aws.provision.home import Home, Resource

_POLICY_NAME = "cortex-tui"
#: What workers do with their jobs' SQS queues (the ``*Batch`` calls need the same).
_QUEUE_ACTIONS = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
)
_BATCH, _TASKS, _EC2 = "batch.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"


class Role(Resource):
    """An IAM role a service assumes, with managed and inline policies (and an EC2 profile)."""

    def __init__(
        self,
        home: Home,
        kind: str,
        purpose: str,
        service: str,
        managed: tuple[str, ...] = (),
        inline: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(home, home.names.role(kind))
        self.label = f"IAM role ({purpose})"
        self.service, self.managed, self.inline = service, managed, inline
        #: EC2 instances take a role through an instance profile of the same name.
        self.instance_profile = service == _EC2
        self.iam = home.clients("iam")

    def exists(self) -> bool:
        try:
            self.iam.get_role(RoleName=self.name)
        except ClientError as e:
            if error_code(e) == "NoSuchEntity":
                return False
            raise
        return True

    def create(self) -> None:
        self.iam.create_role(
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps(_trust(self.service)),
            Description=f"cortex-tui home {self.home.tag}: {self.label}",
            Tags=self.home.tag_list,
        )
        self.reconcile()

    def reconcile(self) -> str:
        trust = json.dumps(_trust(self.service))
        self.iam.update_assume_role_policy(RoleName=self.name, PolicyDocument=trust)
        for arn in self.managed:
            self.iam.attach_role_policy(RoleName=self.name, PolicyArn=arn)
        if self.inline is not None:
            self.iam.put_role_policy(
                RoleName=self.name, PolicyName=_POLICY_NAME, PolicyDocument=json.dumps(self.inline)
            )
        if self.instance_profile:
            self._reconcile_profile()
        return ""

    def _reconcile_profile(self) -> None:
        try:
            profile = self.iam.get_instance_profile(InstanceProfileName=self.name)
            roles = profile["InstanceProfile"]["Roles"]
        except ClientError as e:
            if error_code(e) != "NoSuchEntity":
                raise
            self.iam.create_instance_profile(InstanceProfileName=self.name, Tags=self.home.tag_list)
            roles = []
        if not any(role["RoleName"] == self.name for role in roles):
            self.iam.add_role_to_instance_profile(InstanceProfileName=self.name, RoleName=self.name)

    @property
    def arn(self) -> str:
        """Return the role's ARN."""
        return self.home.arn("iam", f"role/{self.name}", regional=False)

    @property
    def profile_arn(self) -> str:
        """Return the ARN of the role's instance profile."""
        return self.home.arn("iam", f"instance-profile/{self.name}", regional=False)

    def delete(self) -> None:
        iam, role = self.iam, self.name
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role):
            for policy in page["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=role):
            for name in page["PolicyNames"]:
                iam.delete_role_policy(RoleName=role, PolicyName=name)
        for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=role):
            for profile in page["InstanceProfiles"]:
                name = profile["InstanceProfileName"]
                iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
                if name == role:
                    iam.delete_instance_profile(InstanceProfileName=name)
        iam.delete_role(RoleName=role)


def roles(home: Home) -> dict[str, Role]:
    """Return the home's roles by kind: ``batch``, ``exec``, ``job`` and (EC2) ``instance``."""
    service_role = home.managed_policy("AWSBatchServiceRole")
    ecs_instance = home.managed_policy("AmazonEC2ContainerServiceforEC2Role")
    return {
        "batch": Role(home, "batch", "Batch service", _BATCH, managed=(service_role,)),
        "exec": Role(home, "exec", "task execution", _TASKS, inline=exec_policy(home)),
        "job": Role(home, "job", "job", _TASKS, inline=job_policy(home)),
        "instance": Role(home, "instance", "EC2 instances", _EC2, managed=(ecs_instance,)),
    }


def exec_policy(home: Home) -> dict[str, Any]:
    """Return the task execution role's policy: pull the home's images, write its logs."""
    log_group = home.arn("logs", f"log-group:{home.names.log_group}")
    return _policy(
        (["ecr:GetAuthorizationToken"], ["*"]),  # not scoped by AWS: it names no repository
        (
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            [home.arn("ecr", f"repository/{home.names.repository}")],
        ),
        (["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group}:*"]),
    )


def job_policy(home: Home) -> dict[str, Any]:
    """Return the job role's policy: the home's SQS queues and the bucket's ``jobs/``."""
    queues = home.arn("sqs", f"{home.names.prefix}-*")
    return _policy(
        (list(_QUEUE_ACTIONS), [queues]),
        (["s3:GetObject", "s3:PutObject"], [f"arn:{home.partition}:s3:::{home.bucket}/jobs/*"]),
    )


def _policy(*statements: tuple[list[str], list[str]]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": resources}
            for actions, resources in statements
        ],
    }


def _trust(service: str) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return {"Version": "2012-10-17", "Statement": [statement]}
