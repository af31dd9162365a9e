"""AWS Signature Version 4 for the few S3 requests the direct path sends (PUT, HEAD),
and for the presigned URLs a server hands to nodes.

botocore builds an ``AWSRequest`` with ``email.message`` headers for every request,
normalises them, and derives the signing key (four HMACs) again each time. Uploading
many small blobs, that alone is a large share of the CPU the whole upload may take on
a small node (the S3 server competes for it), so this is the measured hot path
written out: the canonical request of
https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html for a
request without a query string, and the signing key kept for the day it is valid.

Presigned URLs (:meth:`SigV4Signer.presigned_query`) are the query-string form of
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html: botocore
takes some 800 µs to presign one, which a server handing out URLs for 10,000 small
files a version cannot afford; this takes a few dozen.

It signs exactly what :class:`botocore.auth.S3SigV4Auth` signs for the same request
(the tests compare both): the path as sent (S3 does not normalise it), ``host``, the
payload's SHA-256 (``UNSIGNED-PAYLOAD`` over HTTPS, where TLS and ``Content-MD5``
guard the body, as botocore does), ``x-amz-date``, ``x-amz-security-token`` for
temporary credentials, and the caller's extra headers (``Content-MD5``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import quote

__all__ = ["EMPTY_SHA256", "UNSIGNED_PAYLOAD", "Credentials", "SigV4Signer", "amz_date"]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Credentials(NamedTuple):
    """A frozen access key, secret and optional session token."""

    access_key: str
    secret_key: str
    token: str | None = None


def amz_date(now: float | None = None) -> str:
    """The ``x-amz-date`` of ``now`` (default: the current time), ``YYYYMMDDTHHMMSSZ``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class SigV4Signer:
    """Signs requests to one host, region and service (``s3``)."""

    def __init__(self, host: str, region: str, service: str = "s3") -> None:
        self.host = host
        self.region = region
        self.service = service
        self._key: tuple[str, str, bytes] | None = None  # (secret, date, signing key)

    def _signing_key(self, secret: str, date: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == secret and cached[1] == date:
            return cached[2]
        key = _hmac(f"AWS4{secret}".encode(), date)
        for part in (self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        self._key = (secret, date, key)
        return key

    def headers(
        self,
        method: str,
        path: str,
        credentials: Credentials,
        payload_sha256: str,
        extra: Mapping[str, str] = {},  # read only
        *,
        date: str | None = None,
    ) -> dict[str, str]:
        """The headers to send with ``method path`` (``path`` percent-encoded, no
        query): ``extra``, ``Host``, the ``x-amz-*`` headers and ``Authorization``.

        ``date`` is the ``x-amz-date`` to sign with (default: now).
        """
        stamp = date or amz_date()
        headers = dict(extra)
        headers["Host"] = self.host
        headers["x-amz-content-sha256"] = payload_sha256
        headers["x-amz-date"] = stamp
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        signed = sorted((k.lower(), " ".join(v.split())) for k, v in headers.items())
        names = ";".join(k for k, _ in signed)
        canonical = "\n".join(
            (
                method,
                path,
                "",  # no query string
                "".join(f"{k}:{v}\n" for k, v in signed),
                names,
                payload_sha256,
            )
        )
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = self._signing_key(credentials.secret_key, stamp[:8])
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        return headers

    def presigned_query(
        self,
        method: str,
        path: str,
        credentials: Credentials,
        expires_in: int,
        headers: Mapping[str, str] = {},  # read only
        params: Mapping[str, str] = {},  # read only
        *,
        date: str | None = None,
    ) -> str:
        """The query string of a presigned ``method path`` (``path`` percent-encoded):
        the operation's ``params``, the ``X-Amz-*`` authorisation and the signature,
        valid for ``expires_in`` seconds from ``date`` (default: now). ``headers``
        (besides ``Host``) are signed: the request must send them as they are. The
        payload is not signed (``UNSIGNED-PAYLOAD``), as for every presigned URL.
        """
        stamp = date or amz_date()
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        signed = sorted(
            [("host", self.host), *((k.lower(), " ".join(v.split())) for k, v in headers.items())]
        )
        names = ";".join(k for k, _ in signed)
        query = dict(params)
        query.update(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": f"{credentials.access_key}/{scope}",
                "X-Amz-Date": stamp,
                "X-Amz-Expires": str(expires_in),
                "X-Amz-SignedHeaders": names,
            }
        )
        if credentials.token:
            query["X-Amz-Security-Token"] = credentials.token
        canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
        canonical = "\n".join(
            (
                method,
                path,
                canonical_query,
                "".join(f"{k}:{v}\n" for k, v in signed),
                names,
                UNSIGNED_PAYLOAD,
            )
        )
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = self._signing_key(credentials.secret_key, stamp[:8])
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{canonical_query}&X-Amz-Signature={signature}"


def _encode(text: str) -> str:
    """Percent-encoding as SigV4 wants it in a query: every byte but the unreserved."""
    return quote(text, safe="-_.~")
