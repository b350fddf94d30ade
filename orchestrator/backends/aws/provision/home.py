"""Where a home's resources live, and the interface each resource implements."""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.aws import HOME_TAG_KEY, Clients, Names
from orchestrator.errors import InvalidRequest
from orchestrator.settings import Settings

#: How long a Batch resource may take to settle (real AWS: seconds to a few minutes).
WAIT_S = 900.0


class ProvisionError(InvalidRequest):
    """A home's AWS resources cannot be set up or torn down as asked (the message says why)."""


@dataclass(frozen=True)
class Home:
    """A home's resource names, and the account, region and partition they live in."""

    path: Path
    clients: Clients
    names: Names
    account: str
    region: str
    partition: str

    @classmethod
    def connect(cls, settings: Settings) -> Home:
        """Return the home of ``settings``, asking AWS whose credentials these are."""
        clients = Clients(settings)
        batch = clients("batch")  # a regional client: no region raises here, not later
        region, partition = str(batch.meta.region_name or ""), str(batch.meta.partition)
        if not region:  # AWS_DEFAULT_REGION="" gets past botocore
            raise ProvisionError(
                "no AWS region is set: use --set aws_region=REGION, or AWS_DEFAULT_REGION"
            )
        return cls(settings.home, clients, Names.of(settings), clients.account(), region, partition)

    @property
    def tag(self) -> str:
        """Return the home's tag (the value of ``HOME_TAG_KEY`` on every resource)."""
        return self.names.tag

    @property
    def bucket(self) -> str:
        """Return the S3 bucket's name."""
        return self.names.bucket(self.account)

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        """Return the ARN of a resource of this account (and region)."""
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"

    @property
    def tags(self) -> dict[str, str]:
        """Return the home's tag as a map (Batch, CloudWatch Logs)."""
        return {HOME_TAG_KEY: self.tag}

    @property
    def tag_list(self) -> list[dict[str, str]]:
        """Return the home's tag as a ``Key``/``Value`` list (S3, ECR, IAM)."""
        return [{"Key": HOME_TAG_KEY, "Value": self.tag}]

    def managed_policy(self, name: str) -> str:
        """Return the ARN of an AWS managed policy."""
        return f"arn:{self.partition}:iam::aws:policy/service-role/{name}"


def wait_for(what: str, done: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Poll ``done`` with backoff until it is true; say so once when it takes a while."""
    start = time.monotonic()
    delay, said = 0.2, False
    while not done():
        waited = time.monotonic() - start
        if waited > timeout_s:
            raise ProvisionError(f"{what}: not done after {timeout_s:.0f}s; run the command again")
        if waited > 5 and not said:
            print(f"  waiting for {what} ...", file=sys.stderr, flush=True)
            said = True
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


class Resource(ABC):
    """One AWS resource of a home: looked up, created, brought in line, deleted."""

    label = ""

    def __init__(self, home: Home, name: str, setting: str = "") -> None:
        self.home = home
        self.name = name
        #: The setting naming it when it is the user's own (setup uses it, teardown keeps it).
        self.setting = setting

    @abstractmethod
    def exists(self) -> bool:
        """Return whether it exists."""

    @abstractmethod
    def create(self) -> None:
        """Create it as setup makes it."""

    def reconcile(self) -> str:
        """Bring an existing one in line with what setup makes; return what changed, or ''."""
        return ""

    @abstractmethod
    def delete(self) -> None:
        """Delete it and what it holds."""
