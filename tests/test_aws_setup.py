"""``cortex-tui aws setup | status | teardown`` through the real CLI against a real moto server.

Each test runs the CLI as a user would (a subprocess with its own home and moto's endpoint)
and checks what it made or removed through boto3, so nothing of this project is mocked. One
moto server serves the module; every test has its own home, hence its own resource names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import motokit
import pytest
from botocore.exceptions import ClientError

from orchestrator.aws import HOME_TAG_KEY, Names, home_tag

pytestmark = pytest.mark.aws

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"  # moto's
LABELS = (
    "S3 bucket",
    "ECR repository",
    "CloudWatch log group",
    "IAM role (Batch service)",
    "IAM role (task execution)",
    "IAM role (job)",
    "Batch compute environment",
    "Batch job queue",
)
TASKS = "ecs-tasks.amazonaws.com"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[motokit.MotoServer]:
    """One moto server for the module, which knows AWS's managed IAM policies."""
    motokit.require_moto(docker=False)
    server = motokit.MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    with pytest.MonkeyPatch.context() as env:
        # Without this, moto refuses to attach AWSBatchServiceRole: it does not exist there.
        env.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        server.start()
    try:
        yield server
    finally:
        server.stop()


class Home:
    """A temp home, the CLI run for it, and what moto holds of it."""

    def __init__(self, path: Path, moto: motokit.MotoServer) -> None:
        self.path, self.moto = path, moto
        self.names = Names(home_tag(path))
        self._clients: dict[str, Any] = {}
        self.bucket = self.names.bucket(ACCOUNT)
        empty = path.parent / "aws-config"
        empty.write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CORTEX"))}
        self.env |= {
            **moto.env,
            "CORTEX_TUI_HOME": str(path),
            "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookups (timeouts)
        }

    def aws(self, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        """Run ``cortex-tui aws ARGS`` for this home (``env``: changes, None to unset)."""
        changed = {k: v for k, v in {**self.env, **env}.items() if v is not None}
        return subprocess.run(
            [sys.executable, "-m", "cortex_tui", "aws", *args],
            cwd=ROOT, env=changed, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def client(self, service: str) -> Any:
        """Return a boto3 client of the moto server (one per service)."""
        if service not in self._clients:
            self._clients[service] = self.moto.client(service)
        return self._clients[service]

    def inventory(self) -> dict[str, list[str]]:
        """Return every resource moto holds whose name starts with the home's prefix."""
        prefix, batch, iam = self.names.prefix, self.client("batch"), self.client("iam")
        found = {
            "buckets": [b["Name"] for b in self.client("s3").list_buckets()["Buckets"]],
            "repositories": [
                r["repositoryName"]
                for r in self.client("ecr").describe_repositories()["repositories"]
            ],
            "log groups": [
                g["logGroupName"]
                for g in self.client("logs").describe_log_groups(
                    logGroupNamePrefix=self.names.log_group
                )["logGroups"]
            ],
            "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
            "instance profiles": [
                p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
            ],
            "compute environments": [
                c["computeEnvironmentName"]
                for c in batch.describe_compute_environments()["computeEnvironments"]
                if c["status"] != "DELETED"
            ],
            "job queues": [
                q["jobQueueName"]
                for q in batch.describe_job_queues()["jobQueues"]
                if q["status"] != "DELETED"
            ],
            "job definitions": [
                d["jobDefinitionName"]
                for d in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
            ],
            "sqs queues": [
                url.rsplit("/", 1)[-1]
                for url in self.client("sqs").list_queues(QueueNamePrefix=prefix)
                .get("QueueUrls", [])
            ],
        }  # fmt: skip
        return {
            kind: sorted(n for n in names if n.startswith((prefix, self.names.log_group)))
            for kind, names in found.items()
        }

    def state(self) -> dict[str, Any]:
        """Return the full description of what setup makes, creation times included."""
        s3, iam, batch = self.client("s3"), self.client("iam"), self.client("batch")
        names = self.names
        roles = {}
        for kind in ("batch", "exec", "job"):
            role = names.role(kind)
            roles[kind] = {
                "role": iam.get_role(RoleName=role)["Role"],
                "attached": iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"],
                "inline": {
                    name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
                },
            }
        state = {
            "bucket tags": s3.get_bucket_tagging(Bucket=self.bucket)["TagSet"],
            "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"],
            "public access": s3.get_public_access_block(Bucket=self.bucket)[
                "PublicAccessBlockConfiguration"
            ],
            "repository": self.client("ecr").describe_repositories(
                repositoryNames=[names.repository]
            )["repositories"],
            "log group": self.client("logs").describe_log_groups(
                logGroupNamePrefix=names.log_group
            )["logGroups"],
            "roles": roles,
            "compute environment": batch.describe_compute_environments(
                computeEnvironments=[names.compute_environment]
            )["computeEnvironments"],
            "job queue": batch.describe_job_queues(jobQueues=[names.job_queue])["jobQueues"],
        }
        plain: dict[str, Any] = json.loads(json.dumps(state, default=str))
        return plain


@pytest.fixture
def home(tmp_path: Path, moto: motokit.MotoServer) -> Iterator[Home]:
    """A fresh home; whatever a test leaves of it on moto is torn down after."""
    made = Home(tmp_path / "home", moto)
    yield made
    if made.inventory() != nothing(made):
        made.aws("teardown", "--force")


def outcomes(stdout: str) -> dict[str, str]:
    """Return each resource line's outcome by label (``created``, ``already there``, ...)."""
    found = {}
    for line in stdout.splitlines():
        for label in (*LABELS, "IAM role (EC2 instances)"):
            if line.startswith(label + " "):
                found[label] = line[len(label) :].split(maxsplit=1)[1].strip()
    return found


def expected_inventory(home: Home, **extra: list[str]) -> dict[str, list[str]]:
    names = home.names
    return {
        "buckets": [home.bucket],
        "repositories": [names.repository],
        "log groups": [names.log_group],
        "roles": sorted(names.role(kind) for kind in ("batch", "exec", "job")),
        "instance profiles": [],
        "compute environments": [names.compute_environment],
        "job queues": [names.job_queue],
        "job definitions": [],
        "sqs queues": [],
    } | extra


def nothing(home: Home) -> dict[str, list[str]]:
    return {kind: [] for kind in expected_inventory(home)}


def check_made(home: Home, state: dict[str, Any]) -> None:
    """Check each resource setup made: its settings, tags and least-privilege policies."""
    tag = {"Key": HOME_TAG_KEY, "Value": home.names.tag}
    assert state["bucket tags"] == [tag]
    [rule] = state["lifecycle"]
    assert (rule["Status"], rule["Filter"], rule["Expiration"]) == (
        "Enabled", {"Prefix": "jobs/"}, {"Days": 7},
    )  # fmt: skip
    assert all(state["public access"].values())
    assert [g["retentionInDays"] for g in state["log group"]] == [14]
    logs = home.client("logs").list_tags_log_group(logGroupName=home.names.log_group)
    assert logs["tags"] == {HOME_TAG_KEY: home.names.tag}
    [compute] = state["compute environment"]
    assert (compute["type"], compute["state"], compute["status"]) == ("MANAGED", "ENABLED", "VALID")
    assert compute["computeResources"]["type"] == "FARGATE"
    assert compute["computeResources"]["maxvCpus"] == 16
    assert compute["serviceRole"].endswith(f":role/{home.names.role('batch')}")
    assert compute["tags"] == {HOME_TAG_KEY: home.names.tag}
    ec2 = home.client("ec2")
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert sorted(compute["computeResources"]["subnets"]) == sorted(
        s["SubnetId"] for s in subnets["Subnets"]
    )
    [queue] = state["job queue"]
    assert (queue["state"], queue["status"]) == ("ENABLED", "VALID")
    [order] = queue["computeEnvironmentOrder"]
    assert order["computeEnvironment"] == compute["computeEnvironmentArn"]
    assert queue["tags"] == {HOME_TAG_KEY: home.names.tag}
    ecr_tags = home.client("ecr").list_tags_for_resource(
        resourceArn=state["repository"][0]["repositoryArn"]
    )["tags"]
    assert ecr_tags == [tag]
    check_roles(home, state["roles"], tag)


def check_roles(home: Home, roles: dict[str, Any], tag: dict[str, str]) -> None:
    """Check the three roles setup made: who may assume them, and least-privilege policies."""
    for kind, service in (("batch", "batch.amazonaws.com"), ("exec", TASKS), ("job", TASKS)):
        role = roles[kind]["role"]
        trust = role["AssumeRolePolicyDocument"]
        if isinstance(trust, str):
            trust = json.loads(trust)
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": service}], kind
        assert tag in role["Tags"], kind
    assert [p["PolicyName"] for p in roles["batch"]["attached"]] == ["AWSBatchServiceRole"]
    assert roles["batch"]["inline"] == {}
    assert roles["job"]["attached"] == roles["exec"]["attached"] == []
    [job_policy] = roles["job"]["inline"].values()
    by_service = {s["Action"][0].split(":")[0]: s for s in job_policy["Statement"]}
    assert sorted(by_service["sqs"]["Action"]) == sorted(
        f"sqs:{action}"
        for action in ("SendMessage", "ReceiveMessage", "DeleteMessage",
                       "ChangeMessageVisibility", "GetQueueUrl", "GetQueueAttributes")
    )  # fmt: skip
    assert by_service["sqs"]["Resource"] == [
        f"arn:aws:sqs:{motokit.REGION}:{ACCOUNT}:{home.names.prefix}-*"
    ]
    assert sorted(by_service["s3"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert by_service["s3"]["Resource"] == [f"arn:aws:s3:::{home.bucket}/jobs/*"]
    [exec_policy] = roles["exec"]["inline"].values()
    resources = {a: s["Resource"] for s in exec_policy["Statement"] for a in s["Action"]}
    assert resources["ecr:GetAuthorizationToken"] == ["*"]
    assert resources["ecr:BatchGetImage"] == [
        f"arn:aws:ecr:{motokit.REGION}:{ACCOUNT}:repository/{home.names.repository}"
    ]
    assert resources["logs:PutLogEvents"] == [
        f"arn:aws:logs:{motokit.REGION}:{ACCOUNT}:log-group:{home.names.log_group}:*"
    ]


@pytest.mark.slow
def test_setup_status_and_teardown_over_a_homes_life(home: Home) -> None:
    before = home.aws("status")
    assert before.returncode == 1
    assert outcomes(before.stdout) == dict.fromkeys(LABELS, "missing")
    assert "run `cortex-tui aws setup`" in before.stdout

    made = home.aws("setup")
    assert made.returncode == 0, made.stderr
    assert outcomes(made.stdout) == dict.fromkeys(LABELS, "created")
    assert home.inventory() == expected_inventory(home)
    state = home.state()
    check_made(home, state)

    again = home.aws("setup")
    assert again.returncode == 0, again.stderr
    assert outcomes(again.stdout) == dict.fromkeys(LABELS, "already there")
    assert home.state() == state  # creation times included: nothing was made anew

    queue = home.names.queue("job1", "work")
    home.client("sqs").create_queue(QueueName=queue)
    ready = home.aws("status")
    assert ready.returncode == 0, ready.stderr
    assert outcomes(ready.stdout) == dict.fromkeys(LABELS, "present")
    assert f"running: 1 SQS queue ({queue})" in ready.stdout
    home.client("sqs").delete_queue(
        QueueUrl=home.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
    )

    # What the aws backend leaves while it runs: a job's objects, a job definition.
    key = home.names.key("job1", "control.json")
    home.client("s3").put_object(Bucket=home.bucket, Key=key, Body=b"{}")
    home.client("batch").register_job_definition(
        jobDefinitionName=home.names.job_definition("iris"),
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128},
    )
    gone = home.aws("teardown")
    assert gone.returncode == 0, gone.stderr
    assert outcomes(gone.stdout) == dict.fromkeys(LABELS, "deleted") | {
        "IAM role (EC2 instances)": "not there"
    }
    assert "1 deregistered" in gone.stdout
    assert home.inventory() == nothing(home)

    twice = home.aws("teardown")
    assert twice.returncode == 0, twice.stderr
    assert set(outcomes(twice.stdout).values()) == {"not there"}
    assert twice.stdout.rstrip().endswith("nothing to delete: nothing setup made is left on AWS")


@pytest.mark.slow
def test_teardown_refuses_while_a_jobs_queue_exists_and_force_ends_it(home: Home) -> None:
    assert home.aws("setup").returncode == 0
    gpu = home.aws("setup", "--gpu")
    assert gpu.returncode == 2
    [line] = gpu.stderr.splitlines()
    assert "runs on FARGATE" in line and "cortex-tui aws teardown" in line
    queue = home.names.queue("job7", "work")
    home.client("sqs").create_queue(QueueName=queue)

    refused = home.aws("teardown")

    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: not tearing down while this home runs on AWS:")
    assert queue in line and "--force" in line
    assert home.inventory() == expected_inventory(home, **{"sqs queues": [queue]})
    forced = home.aws("teardown", "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"SQS queue                  {queue}" in forced.stdout
    assert home.inventory() == nothing(home)


@pytest.mark.slow
def test_gpu_setup_makes_an_ec2_compute_environment_and_its_instance_role(home: Home) -> None:
    done = home.aws("setup", "--gpu", "--max-vcpus", "8")

    assert done.returncode == 0, done.stderr
    assert outcomes(done.stdout)["IAM role (EC2 instances)"] == "created"
    instance = home.names.role("instance")
    assert home.inventory() == expected_inventory(
        home,
        roles=sorted(home.names.role(kind) for kind in ("batch", "exec", "job", "instance")),
        **{"instance profiles": [instance]},
    )
    [compute] = home.state()["compute environment"]
    resources = compute["computeResources"]
    assert (resources["type"], resources["minvCpus"], resources["maxvCpus"]) == ("EC2", 0, 8)
    assert set(resources["instanceTypes"]) == {"g4dn", "g5"}
    assert resources["instanceRole"].endswith(f":instance-profile/{instance}")
    attached = home.client("iam").list_attached_role_policies(RoleName=instance)
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == [
        "AmazonEC2ContainerServiceforEC2Role"
    ]
    assert home.aws("teardown").returncode == 0
    assert home.inventory() == nothing(home)


@pytest.mark.slow
def test_a_bucket_named_by_aws_bucket_is_used_as_is_and_kept(home: Home) -> None:
    s3 = home.client("s3")
    s3.create_bucket(Bucket="users-own-bucket")
    s3.put_object(Bucket="users-own-bucket", Key="jobs/old/control.json", Body=b"{}")
    own = ("--set", "aws_bucket=users-own-bucket")

    done = home.aws("setup", *own)

    assert done.returncode == 0, done.stderr
    assert outcomes(done.stdout)["S3 bucket"] == "yours (aws_bucket), used as is"
    assert home.inventory()["buckets"] == []
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket="users-own-bucket")
    job_policy = home.client("iam").get_role_policy(
        RoleName=home.names.role("job"), PolicyName="cortex-tui"
    )["PolicyDocument"]
    assert {"arn:aws:s3:::users-own-bucket/jobs/*"} in [
        set(statement["Resource"]) for statement in job_policy["Statement"]
    ]
    gone = home.aws("teardown", *own)
    assert gone.returncode == 0, gone.stderr
    assert outcomes(gone.stdout)["S3 bucket"] == "kept (yours: aws_bucket)"
    objects = s3.list_objects_v2(Bucket="users-own-bucket")["Contents"]
    assert [o["Key"] for o in objects] == ["jobs/old/control.json"]
    for setting, says in (
        ("aws_bucket=no-such-bucket", "S3 bucket no-such-bucket (--set aws_bucket)"),
        ("aws_job_queue=no-such-queue", "Batch job queue no-such-queue (--set aws_job_queue)"),
    ):
        missing = home.aws("setup", "--set", setting)
        assert missing.returncode == 2
        assert f"{says} does not exist" in missing.stderr
        assert "nothing was set up" in missing.stderr
        assert missing.stdout.count("\n") == 1, missing.stdout  # the home's line: nothing made
        assert not any(home.inventory().values()), home.inventory()


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "no AWS credentials found"),
        ({"AWS_PROFILE": "nobody"}, "The config profile (nobody) could not be found"),
        ({"AWS_DEFAULT_REGION": None, "AWS_REGION": None}, "no AWS region is set"),
        ({"AWS_DEFAULT_REGION": ""}, "no AWS region is set"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach AWS"),
    ],
    ids=["no credentials", "bad profile", "no region", "empty region", "unreachable endpoint"],
)
def test_aws_problems_are_one_line_and_exit_2(
    tmp_path: Path, moto: motokit.MotoServer, env: dict[str, str | None], says: str
) -> None:
    failed = Home(tmp_path / "home", moto).aws("setup", **env)

    assert failed.returncode == 2
    [line] = failed.stderr.splitlines()
    assert line.startswith("error: ") and says in line
    assert "Traceback" not in failed.stdout
