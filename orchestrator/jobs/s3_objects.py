"""``s3://`` paths of job sources: objects listed by key prefix, and opened as buffered streams.

The orchestrator reads S3 itself, with its own AWS credentials and settings (``Clients``),
and puts the items in batches, so an s3:// source works on every backend. S3 paths are the
user's own account's, so unlike local paths they are not confined to the source roots.
botocore is imported only when an s3:// path is used.
"""

from __future__ import annotations

import io
from typing import IO, Any

from orchestrator.aws import Clients, error_code, explain
from orchestrator.errors import InvalidRequest, OrchestratorError

SCHEME = "s3"
#: Large reads: each one is a call through botocore and urllib3.
_BUFFER_BYTES = 1024 * 1024
_ACCESS_CODES = ("AccessDenied", "AllAccessDisabled")


class S3PathError(ValueError):
    """An s3:// path cannot be listed; the message says why and what to fix."""


def split(path: str) -> tuple[str, str]:
    """Return the bucket and the key (or key prefix) of ``s3://bucket/key``."""
    bucket, _, key = path.split("://", 1)[1].partition("/")
    if not bucket:
        raise S3PathError(f"{path}: names no bucket (write s3://bucket/prefix)")
    return bucket, key


def list_objects(path: str, aws: Clients) -> list[str]:
    """Return, sorted, the ``s3://`` URL of every object whose key starts with the path's key.

    The key is a raw prefix, as in Cortex: ``s3://b/data`` lists ``data/a`` and also
    ``data2/b``; ``s3://b/data/`` lists only what is under ``data/``. Keys ending in ``/``
    are folder markers, not files, and are left out.

    Raises:
        S3PathError: The bucket does not exist, no object matches, or the user's
            credentials, region or permissions are wrong.
        AwsError: AWS failed in a way that is not the user's to fix.
    """
    bucket, prefix = split(path)
    try:
        pages = aws("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", ())]
    except Exception as e:
        problem = _explain(e, path, bucket, "s3:ListBucket")
        if isinstance(problem, InvalidRequest):
            raise S3PathError(problem.message) from e
        raise problem from e
    files = sorted(f"s3://{bucket}/{key}" for key in keys if not key.endswith("/"))
    if not prefix and not files:
        raise S3PathError(f'{path}: the bucket "{bucket}" holds no objects')
    if not files:
        raise S3PathError(
            f'{path}: no object in the bucket "{bucket}" has a key starting with "{prefix}"'
            " (the prefix matches as written, case included)"
        )
    return files


def open_object(location: str, aws: Clients) -> IO[bytes]:
    """Open a listed object for reading bytes, buffered (``readline`` on the bare body
    reads one byte per call: 10 s for 20,000 lines).

    Raises:
        OSError: The object cannot be fetched or read; the message says why.
    """
    bucket, key = split(location)
    try:
        body = aws("s3").get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as e:
        raise OSError(_explain(e, "GetObject", bucket, "s3:GetObject").message) from e
    return io.BufferedReader(_Body(body), buffer_size=_BUFFER_BYTES)


class _Body(io.RawIOBase):
    """An object's streaming body as a raw stream whose failures are all ``OSError``."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        """Return True: the body is read, never written."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``; a failed or cut-short download is an ``OSError``."""
        try:
            return int(self._body.readinto(buffer))
        except OSError:
            raise
        except Exception as e:  # botocore's IncompleteReadError, ResponseStreamingError
            raise OSError(f"the download failed: {e}") from e

    def close(self) -> None:
        """Close the body (its connection goes back to the pool)."""
        if not self.closed:
            self._body.close()
        super().close()


def _explain(error: Exception, doing: str, bucket: str, permission: str) -> OrchestratorError:
    """Return the user-facing error for an S3 failure on ``bucket`` while ``doing``."""
    if isinstance(error, OrchestratorError):  # making the client failed, already explained
        return type(error)(f"{doing}: {error.message}")
    import botocore.exceptions

    code = error_code(error)
    if code == "NoSuchBucket":
        return InvalidRequest(
            f'{doing}: the bucket "{bucket}" does not exist: check its name (and'
            " AWS_ENDPOINT_URL, if the orchestrator's environment sets one)"
        )
    if code == "InvalidBucketName" or isinstance(error, botocore.exceptions.ParamValidationError):
        return InvalidRequest(
            f'{doing}: "{bucket}" is not a valid bucket name (3 to 63 characters: lowercase'
            " letters, digits, dots and hyphens)"
        )
    if code == "NoSuchKey":
        return InvalidRequest(
            f"{doing}: the object no longer exists: it was deleted or renamed since it was listed"
        )
    if code in _ACCESS_CODES:
        return InvalidRequest(
            f"{doing}: access denied by AWS ({code}): the orchestrator's credentials need"
            f' {permission} on the bucket "{bucket}"'
        )
    return explain(error, doing)
