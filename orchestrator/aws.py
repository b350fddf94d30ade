"""AWS for the orchestrator: clients from the standard boto3 chain, the names of a home's
resources, and AWS errors turned into messages that say what to fix.

Credentials and endpoints come from boto3's own configuration (environment, ``AWS_PROFILE``,
SSO, an instance role; ``AWS_ENDPOINT_URL`` and its per-service variants), so the AWS backend
and ``s3://`` sources run against any AWS-compatible endpoint. Every resource a home creates
is named after it (``ctui-<tag>``, the tag a hash of the home's path) and tagged with it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from orchestrator.errors import InvalidRequest, OrchestratorError
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.store.models import RemoteQueues


class AwsError(OrchestratorError):
    """AWS answered with an error that is not the user's to fix (reported as it came)."""

    status_code = 502


class AwsUnreachable(InvalidRequest):
    """AWS's endpoint did not answer (no connection, or a timeout).

    At a request it is the user's to check (400, naming ``AWS_ENDPOINT_URL``); while a job
    runs it is taken for a passing outage, and tried again for ``aws_unreachable_grace_s``.
    """


#: The tag every resource of a home carries (its value: the home's tag).
HOME_TAG_KEY = "cortex-tui-home"
#: Botocore's standard retry mode: throttling and transient errors back off and retry.
_RETRIES = {"mode": "standard", "max_attempts": 6}
#: Error codes that mean the credentials themselves are the problem.
_CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "RequestExpired",
    }
)
_SETUP_HINT = "run `cortex-tui aws setup` (README, AWS backend)"


def home_tag(home: Path) -> str:
    """Return the short tag naming a home's AWS resources (a hash of its real path)."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Names:
    """The names of one home's AWS resources."""

    tag: str
    bucket_setting: str = ""
    job_queue_setting: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Names:
        """Return the names for ``settings``' home (settings may name bucket and queue)."""
        return cls(home_tag(settings.home), settings.aws_bucket, settings.aws_job_queue)

    @property
    def prefix(self) -> str:
        """Return the prefix of every name (``ctui-<tag>``)."""
        return f"ctui-{self.tag}"

    def bucket(self, account: str) -> str:
        """Return the S3 bucket (``aws_bucket``, or one per home and account)."""
        return self.bucket_setting or f"{self.prefix}-{account}"

    @property
    def job_queue(self) -> str:
        """Return the Batch job queue (``aws_job_queue``, or the home's)."""
        return self.job_queue_setting or self.prefix

    @property
    def compute_environment(self) -> str:
        """Return the Batch compute environment ``aws setup`` makes."""
        return self.prefix

    @property
    def repository(self) -> str:
        """Return the ECR repository of the home's API images."""
        return self.prefix

    @property
    def log_group(self) -> str:
        """Return the CloudWatch log group of the home's workers."""
        return f"/cortex-tui/{self.tag}"

    def role(self, kind: str) -> str:
        """Return an IAM role's name: ``batch`` (service), ``exec`` (pull, logs), ``job``."""
        return f"{self.prefix}-{kind}"

    def job_definition(self, api_name: str) -> str:
        """Return the Batch job definition of an API (one revision per API version)."""
        return f"{self.prefix}-{api_name}"

    def queue(self, job_id: str, kind: str) -> str:
        """Return one of a job's SQS queues: ``work`` or ``events``."""
        return f"{self.prefix}-{job_id}-{kind}"

    def batch_job(self, worker_id: str) -> str:
        """Return the Batch job name of a worker."""
        return f"{self.prefix}-{worker_id}"

    def key(self, job_id: str, name: str) -> str:
        """Return the S3 key of a job's object (``control.json``, spilled messages)."""
        return f"jobs/{job_id}/{name}"


class Clients:
    """boto3 clients of one session, made once per service and shared (they are thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self._region = settings.aws_region or None
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None

    def __call__(self, service: str) -> Any:
        """Return the client of ``service`` (``s3``, ``sqs``, ``batch``, ...)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make(service)
            return self._clients[service]

    def _make(self, service: str) -> Any:
        require_boto3()
        import boto3
        import botocore.config
        import botocore.exceptions

        try:
            if self._session is None:
                self._session = boto3.session.Session(region_name=self._region)
            config = botocore.config.Config(retries=_RETRIES, max_pool_connections=32)
            return self._session.client(service, config=config)
        except botocore.exceptions.BotoCoreError as e:
            raise explain(e, f"making the AWS {service} client") from None

    @property
    def region(self) -> str:
        """Return the region the clients use."""
        region = self("sts").meta.region_name
        if not region or region == "aws-global":  # sts answers without one; the rest do not
            raise InvalidRequest(
                "no AWS region is set: use --set aws_region=REGION, or AWS_DEFAULT_REGION"
            )
        return str(region)

    def account(self) -> str:
        """Return the account id of the credentials (asked once)."""
        if self._account is None:
            try:
                self._account = str(self("sts").get_caller_identity()["Account"])
            except Exception as e:
                raise explain(e, "checking the AWS credentials (sts get-caller-identity)") from None
        return self._account


def require_boto3() -> None:
    """Raise a 400 naming the extra to install when boto3 is not installed."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise InvalidRequest(
            "the aws backend and s3:// sources need boto3, which is not installed where the"
            " orchestrator runs: pip install 'cortex-tui[aws]' (or boto3) into its"
            " environment, then restart it (cortex-tui down, cortex-tui up)"
        ) from None


def error_code(error: BaseException) -> str:
    """Return an AWS error's code (``ClientError``), or ''."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def explain(error: BaseException, doing: str) -> OrchestratorError:
    """Return a user-facing error for an AWS failure while ``doing`` something.

    Missing or bad credentials, region or profile, and missing resources are the user's to
    fix (400, naming the setting or ``aws setup``); anything else is reported as it came.
    """
    if isinstance(error, OrchestratorError):
        return error
    import botocore.exceptions as bx

    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        return InvalidRequest(
            f"{doing}: no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY) in the orchestrator's environment (export them, then"
            " restart it: cortex-tui down, cortex-tui up), or run it where an instance role"
            " applies"
        )
    if isinstance(error, bx.ProfileNotFound):
        return InvalidRequest(f"{doing}: {error}: check AWS_PROFILE and ~/.aws/config")
    if isinstance(error, bx.CredentialRetrievalError):
        return InvalidRequest(
            f"{doing}: the AWS credentials could not be fetched ({error}): check the"
            " credential settings in the orchestrator's environment (AWS_PROFILE, the"
            " AWS_CONTAINER_CREDENTIALS_* variables, ~/.aws/config)"
        )
    if isinstance(error, bx.NoRegionError):
        return InvalidRequest(
            f"{doing}: no AWS region is set: use --set aws_region=REGION, or AWS_DEFAULT_REGION"
        )
    if isinstance(error, bx.ConnectionError | bx.HTTPClientError):  # refused, reset, timed out
        return AwsUnreachable(f"{doing}: cannot reach AWS ({error}): check AWS_ENDPOINT_URL")
    code = error_code(error)
    if code in _CREDENTIAL_CODES:
        return InvalidRequest(
            f"{doing}: the AWS credentials were refused ({code}): refresh them (aws sso login,"
            " or new keys)"
        )
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return InvalidRequest(
            f"{doing}: access denied by AWS ({code}): the credentials lack the permission"
        )
    if code == "ClientException" and "does not exist" in str(error):  # Batch: no such queue
        return InvalidRequest(f"{doing}: {error}; {_SETUP_HINT}")
    if code in ("NoSuchBucket", "RepositoryNotFoundException", "AWS.SimpleQueueService."
                "NonExistentQueue", "QueueDoesNotExist"):  # fmt: skip
        return InvalidRequest(f"{doing}: {code}: it does not exist in this region; {_SETUP_HINT}")
    return AwsError(f"{doing}: {type(error).__name__}: {error}")


def setup_hint() -> str:
    """Return the hint that names the command creating a home's AWS resources."""
    return _SETUP_HINT


def transport_description(queues: RemoteQueues, settings: Settings) -> str:
    """Return the transport description a worker of an aws job is launched with."""
    query = urlencode(
        {
            "work": queues.work_url,
            "events": queues.events_url,
            "bucket": queues.bucket,
            "job": queues.job_id,
            "visibility": int(settings.visibility_timeout_s),
            "idle": settings.aws_idle_exit_s,
        }
    )
    return f"sqs://?{query}"
