"""The home's storage: the S3 bucket, the ECR repository and the CloudWatch log group."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from orchestrator.aws import HOME_TAG_KEY, error_code
from orchestrator.backends.aws.provision.home import Home, ProvisionError, Resource

JOBS_EXPIRE_DAYS = 7
LOG_RETENTION_DAYS = 14
_LIFECYCLE_ID = "cortex-tui-jobs-expire"
_PUBLIC_ACCESS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


class Bucket(Resource):
    """The S3 bucket of control files and spilled messages (``jobs/``, expiring)."""

    label = "S3 bucket"

    def __init__(self, home: Home) -> None:
        super().__init__(home, home.bucket, "aws_bucket" if home.names.bucket_setting else "")
        self.s3 = home.clients("s3")

    def exists(self) -> bool:
        try:
            self.s3.head_bucket(Bucket=self.name)
        except ClientError as e:
            if error_code(e) in ("404", "NoSuchBucket", "NotFound"):
                return False
            if error_code(e) in ("403", "AccessDenied"):
                raise ProvisionError(
                    f"S3 bucket {self.name} exists but these credentials may not use it"
                    " (another account's?): name your own with --set aws_bucket=NAME"
                ) from None
            raise
        return True

    def create(self) -> None:
        where = {}
        if self.home.region != "us-east-1":  # the one region that refuses a constraint
            where = {"CreateBucketConfiguration": {"LocationConstraint": self.home.region}}
        self.s3.create_bucket(Bucket=self.name, **where)
        self.reconcile()

    def reconcile(self) -> str:
        blocked = dict.fromkeys(_PUBLIC_ACCESS, True)
        self.s3.put_public_access_block(Bucket=self.name, PublicAccessBlockConfiguration=blocked)
        self.s3.put_bucket_tagging(Bucket=self.name, Tagging={"TagSet": self.home.tag_list})
        expire = {
            "ID": _LIFECYCLE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": "jobs/"},
            "Expiration": {"Days": JOBS_EXPIRE_DAYS},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        rules = [rule for rule in self._lifecycle_rules() if rule.get("ID") != _LIFECYCLE_ID]
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=self.name, LifecycleConfiguration={"Rules": [*rules, expire]}
        )
        return ""

    def _lifecycle_rules(self) -> list[dict[str, Any]]:
        try:
            return list(self.s3.get_bucket_lifecycle_configuration(Bucket=self.name)["Rules"])
        except ClientError as e:
            if error_code(e) == "NoSuchLifecycleConfiguration":
                return []
            raise

    def delete(self) -> None:
        try:
            tags = self.s3.get_bucket_tagging(Bucket=self.name)["TagSet"]
        except ClientError as e:
            if error_code(e) != "NoSuchTagSet":
                raise
            tags = []
        if self.home.tag_list[0] not in tags:
            raise ProvisionError(
                f"S3 bucket {self.name} is not tagged {HOME_TAG_KEY}={self.home.tag}: not"
                " emptying a bucket setup did not make (delete it yourself if it is yours)"
            )
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.name):
            versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            if versions:  # a page holds at most 1000: what one delete_objects takes
                objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
                self.s3.delete_objects(Bucket=self.name, Delete={"Objects": objects, "Quiet": True})
        self.s3.delete_bucket(Bucket=self.name)


class Repository(Resource):
    """The ECR repository of the home's API images."""

    label = "ECR repository"

    def __init__(self, home: Home) -> None:
        super().__init__(home, home.names.repository)
        self.ecr = home.clients("ecr")

    def exists(self) -> bool:
        try:
            self.ecr.describe_repositories(repositoryNames=[self.name])
        except ClientError as e:
            if error_code(e) == "RepositoryNotFoundException":
                return False
            raise
        return True

    def create(self) -> None:
        self.ecr.create_repository(repositoryName=self.name, tags=self.home.tag_list)

    def delete(self) -> None:
        self.ecr.delete_repository(repositoryName=self.name, force=True)


class LogGroup(Resource):
    """The CloudWatch log group of the home's workers."""

    label = "CloudWatch log group"

    def __init__(self, home: Home) -> None:
        super().__init__(home, home.names.log_group)
        self.logs = home.clients("logs")

    def exists(self) -> bool:
        pages = self.logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=self.name
        )
        return any(g["logGroupName"] == self.name for p in pages for g in p["logGroups"])

    def create(self) -> None:
        self.logs.create_log_group(logGroupName=self.name, tags=self.home.tags)
        self.reconcile()

    def reconcile(self) -> str:
        self.logs.put_retention_policy(logGroupName=self.name, retentionInDays=LOG_RETENTION_DAYS)
        return ""

    def delete(self) -> None:
        self.logs.delete_log_group(logGroupName=self.name)
