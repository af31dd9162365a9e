"""What a failed S3 call says: its HTTP status, S3's error code, a sentence.

Every call of :meth:`S3Store.call` that fails raises
:class:`~artisync.store.StoreUnavailableError` with botocore's exception as its cause;
these read that cause, for the few answers that mean something else than "try again"
(404, 412, ``NoSuchUpload``, ``BadDigest``).
"""

from __future__ import annotations

from botocore.exceptions import ClientError, NoCredentialsError

from artisync.store.base import StoreUnavailableError

__all__ = ["CREDENTIAL_HINT", "code_of", "describe", "etag_matches", "status_of"]

CREDENTIAL_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile "
    "in ~/.aws/credentials"
)


def _client_error(e: BaseException) -> ClientError | None:
    cause = e.__cause__ if isinstance(e, StoreUnavailableError) else e
    return cause if isinstance(cause, ClientError) else None


def status_of(e: BaseException) -> int | None:
    """The HTTP status behind a failed call, if the server answered."""
    error = _client_error(e)
    if error is None:
        return None
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def code_of(e: BaseException) -> str:
    """S3's error code behind a failed call (``NoSuchUpload``, ...), or ``""``."""
    error = _client_error(e)
    return str(error.response.get("Error", {}).get("Code", "")) if error else ""


def describe(e: BaseException) -> str:
    """A sentence for a botocore failure: the server's code and message, or the
    client's own error."""
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = err.get("Message") or ""
        return f"{err.get('Code', 'error')} (HTTP {status}){': ' + message if message else ''}"
    if isinstance(e, NoCredentialsError):
        return f"no AWS credentials: {CREDENTIAL_HINT}"
    return str(e) or type(e).__name__


def etag_matches(answer: dict[str, object], md5_hex: str) -> bool:
    """Whether a PUT's (or a part's) ETag says the server got bytes with this MD5.

    S3 gives a single upload's MD5 as its ETag, except for objects encrypted with
    KMS or a customer key: those are taken on trust (their Content-MD5 was checked
    by S3 itself; only servers that skip that check need this one).
    """
    if answer.get("SSECustomerAlgorithm") or str(answer.get("ServerSideEncryption", "")).startswith(
        "aws:kms"
    ):
        return True
    etag = str(answer.get("ETag", "")).strip('"')
    return not etag or etag == md5_hex
