"""The S3 store's connection: the aiobotocore session and client, and the check at open.

- credentials, region and endpoint come from botocore's usual places: ``AWS_*``
  variables (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` included), ``AWS_PROFILE``
  and the files under ``~/.aws``, then instance roles. A custom endpoint gets
  path-style addressing (MinIO, Ceph, moto, rclone serve S3 need it).
- :func:`check_access` asks for the bucket with one HEAD before anything else, so a
  missing or wrong credential, a missing bucket or an endpoint that does not answer
  is one :class:`~artisync.store.remote.StoreAccessError` at daemon start, saying
  what to set.
"""

from __future__ import annotations

import os
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from artisync.store.base import StoreAccessError
from artisync.store.s3_errors import CREDENTIAL_HINT, describe

__all__ = ["ATTEMPTS", "check_access", "endpoint_of", "new_client", "new_session"]

ATTEMPTS = 3
"""Attempts per request (botocore's and the direct path's) before the daemon's own
retries take over."""


def new_session(profile: str | None) -> AioSession:
    """A session on ``profile`` (default: ``AWS_PROFILE``, else the default profile)."""
    return AioSession(profile=profile) if profile else AioSession()


def endpoint_of(session: AioSession, configured: str | None) -> str | None:
    """The endpoint to use: ``configured``, ``AWS_ENDPOINT_URL_S3``,
    ``AWS_ENDPOINT_URL``, the profile's ``endpoint_url``, else None (AWS)."""
    configured = configured or os.environ.get("AWS_ENDPOINT_URL_S3")
    configured = configured or os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured
    endpoint = session.get_scoped_config().get("endpoint_url")
    return endpoint if isinstance(endpoint, str) else None


def new_client(
    session: AioSession, endpoint: str | None, connections: int, attempts: int = ATTEMPTS
) -> Any:
    """An aiobotocore S3 client (an async context manager) on ``endpoint``."""
    config = AioConfig(
        retries={"mode": "standard", "max_attempts": attempts},
        max_pool_connections=connections,
        connect_timeout=10,
        read_timeout=120,
        # Content-MD5 is ours; CRC32 trailers would read every body once more.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Requests are SigV4 either way; named, so presigned URLs are too (botocore
        # presigns with SigV2 unless told), which expire and sign Content-MD5 as a header.
        signature_version="s3v4",
        # Every body we send carries a signed Content-MD5 that the server checks, so
        # the payload's SHA-256 adds nothing but CPU: botocore takes it on plain-http
        # endpoints (a second pass over every byte), where over https it already sends
        # UNSIGNED-PAYLOAD.
        s3={"payload_signing_enabled": False, **({"addressing_style": "path"} if endpoint else {})},
    )
    return session.create_client("s3", config=config, endpoint_url=endpoint)


async def check_access(
    url: str, bucket: str, profile: str | None, endpoint_url: str | None
) -> None:
    """Raise :class:`StoreAccessError`, saying what to set, unless ``bucket`` answers
    a HEAD with the configured credentials."""
    session = new_session(profile)
    try:
        endpoint = endpoint_of(session, endpoint_url)
        credentials = await session.get_credentials()
    except ProfileNotFound as e:
        raise StoreAccessError(
            f"store {url}: {e}; set AWS_PROFILE to a profile in ~/.aws/config"
        ) from None
    where = endpoint or "AWS"
    if credentials is None:
        raise StoreAccessError(f"store {url}: no AWS credentials found: {CREDENTIAL_HINT}")
    source = getattr(credentials, "method", "configured")
    try:
        async with new_client(session, endpoint, 2, attempts=2) as client:
            await client.head_bucket(Bucket=bucket)
    except ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = e.response.get("Error", {}).get("Code", "")
        if status == 404 or code in ("404", "NoSuchBucket"):
            raise StoreAccessError(
                f"store {url}: bucket {bucket!r} does not exist at {where}: "
                "create it, or fix the URL (and AWS_ENDPOINT_URL)"
            ) from None
        if status in (401, 403):
            raise StoreAccessError(
                f"store {url}: access denied to bucket {bucket!r} at {where} "
                f"with the credentials from {source} (HTTP {status}): they are wrong, "
                f"or may not list this bucket: {CREDENTIAL_HINT}"
            ) from None
        if status == 301:
            region = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            region = region.get("x-amz-bucket-region", "another region")
            raise StoreAccessError(
                f"store {url}: bucket {bucket!r} is in {region}: set AWS_DEFAULT_REGION={region}"
            ) from None
        raise StoreAccessError(f"store {url}: {describe(e)}") from None
    except NoRegionError:
        raise StoreAccessError(
            f"store {url}: no AWS region configured: set AWS_DEFAULT_REGION"
        ) from None
    except NoCredentialsError:
        raise StoreAccessError(
            f"store {url}: no AWS credentials found: {CREDENTIAL_HINT}"
        ) from None
    except EndpointConnectionError:
        raise StoreAccessError(
            f"store {url}: cannot connect to {where}: check AWS_ENDPOINT_URL "
            "and that the server is up"
        ) from None
    except (TimeoutError, BotoCoreError, OSError) as e:
        raise StoreAccessError(f"store {url}: {where} did not answer: {e}") from None
