"""What a failed S3 call says: its HTTP status, S3's error code, a sentence.

Every call of :meth:`S3Store.call` that fails raises
:class:`~artisync.store.StoreUnavailableError` with botocore's exception as its cause;
these read that cause, for the few answers that mean something else than "try again"
(404, 412, ``NoSuchUpload``, ``BadDigest``). The direct requests
(:mod:`artisync.store.s3_direct`) turn S3's error answers into the same
``ClientError`` (:func:`error_from_response`) and retry what botocore's ``standard``
mode retries (:func:`is_transient`).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from xml.etree import ElementTree

from aiohttp import ClientConnectionError, ClientPayloadError
from botocore.exceptions import ClientError, NoCredentialsError

from artisync.store.base import StoreUnavailableError

__all__ = [
    "CREDENTIAL_HINT",
    "code_of",
    "describe",
    "error_from_response",
    "etag_matches",
    "is_transient",
    "status_of",
]

CREDENTIAL_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile "
    "in ~/.aws/credentials"
)

# What botocore's ``standard`` retry mode takes for a passing condition.
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
    }
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


def etag_matches(answer: Mapping[str, object], md5_hex: str) -> bool:
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


def is_transient(e: BaseException) -> bool:
    """Whether a direct request's failure is worth another attempt right away: a
    5xx, 408 or 429 answer, a throttling or timeout code, a dropped or refused
    connection, a timeout."""
    if isinstance(e, ClientError):
        return status_of(e) in _TRANSIENT_STATUS or code_of(e) in _TRANSIENT_CODES
    return isinstance(e, (ClientConnectionError, ClientPayloadError, TimeoutError, ConnectionError))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def error_from_response(
    operation: str, status: int, headers: Mapping[str, str], body: bytes
) -> ClientError:
    """The ``ClientError`` botocore would raise for this error answer: the code and
    message of S3's XML error document, else (a HEAD has no body) the status and its
    reason phrase."""
    code, message = str(status), _phrase(status)
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            message = body[:200].decode(errors="replace")
        else:
            fields = {child.tag.rpartition("}")[2]: child.text or "" for child in root}
            code = fields.get("Code") or code
            message = fields.get("Message", "")
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(headers)},
    }
    return ClientError(response, operation)
