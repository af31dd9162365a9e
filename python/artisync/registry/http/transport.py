"""The HTTP registry's wire: JSON requests to an ``artisync server`` over a pool of
keep-alive connections (urllib3), and its answers turned back into artisync's errors.

The server answers a failure as ``{"error": message, "kind": name}``; ``kind`` names the
exception the registry raised there, and the same type is raised here with the same
message, so code written against the ``Registry`` protocol catches the same errors
whatever the backend. A server that cannot be reached, or answers 5xx without an
artisync error (a proxy in front of a stopped server), is
:class:`~artisync.errors.RegistryUnavailableError`, whose message names the server and
what to check.

Failing fast is deliberate: the connect timeout is short and nothing is retried but one
new connection, because the callers decide what waiting means (the daemon keeps commits
in its spool and retries them with backoff; ``Api`` calls fail at once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, SSLError
from urllib3.util import Retry, Timeout, parse_url

from artisync.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryUnavailableError,
    TypeConflictError,
    UnauthorizedError,
)
from artisync.registry.http.acting import acting_key

__all__ = ["CONNECT_TIMEOUT", "Transport", "segment"]

CONNECT_TIMEOUT: Final = 3.0
"""Seconds to open a connection: a server on the same network answers in milliseconds,
so longer only delays the message that it is down."""

_MAX_CONNECTIONS: Final = 32
"""Keep-alive connections kept per client: one per thread that calls at once (the
daemon's workers, a test's writers); more are opened when needed and not kept."""

_KINDS: Final[Mapping[str, type[Exception]]] = {
    "NotFoundError": NotFoundError,
    "TypeConflictError": TypeConflictError,
    "UnauthorizedError": UnauthorizedError,
    "ForbiddenError": ForbiddenError,
    "InvalidInputError": InvalidInputError,
    "BodyTooLarge": InvalidInputError,
    "RegistryUnavailableError": RegistryUnavailableError,
    "RegistryError": RegistryError,
}
"""The server's error kinds and the exception each is here."""

# When the body names no kind (a proxy's page), the status says what it can.
_BY_STATUS: Final[Mapping[int, type[Exception]]] = {
    400: InvalidInputError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: TypeConflictError,
    413: InvalidInputError,
}


_JSON: Final[dict[str, Any]] = {"separators": (",", ":"), "allow_nan": False}


def segment(value: str) -> str:
    """``value`` as one path segment: every reserved character percent-encoded, and
    ``.``/``..`` too, which would otherwise be taken as "this" and "parent" directory."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


class Transport:
    """JSON over HTTP(S) to one server, from any number of threads."""

    def __init__(
        self, base_url: str, *, timeout: float, ca_file: str | None, api_key: str | None = None
    ) -> None:
        url = parse_url(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidInputError(
                f"registry URL {base_url!r} is not http(s)://HOST[:PORT]; write e.g. "
                "https://registry.example.com:8080"
            )
        self.url = base_url.rstrip("/")
        self._prefix = (url.path or "").rstrip("/")
        self._timeout = timeout
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._pool = urllib3.connection_from_url(
            base_url,
            maxsize=_MAX_CONNECTIONS,
            block=False,
            timeout=Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout),
            # One retry of a connection that could not be opened, nothing else: a
            # request that reached the server is never sent twice by this layer.
            retries=Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0),
            **({"ca_certs": ca_file, "cert_reqs": "CERT_REQUIRED"} if ca_file else {}),
        )

    def close(self) -> None:
        """Close every kept connection."""
        self._pool.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; its answer as JSON values, or the error it stands for.

        ``path`` starts with ``/api/v1`` and has its segments encoded (:func:`segment`).
        """
        target = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        try:
            data = None if body is None else json.dumps(body, **_JSON).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{method} {path}: the request holds a value that is not JSON ({exc}); "
                "send str, int, float (finite), bool, None, lists and dicts with str keys"
            ) from None
        headers = dict(self._headers)
        acting = acting_key()
        if acting is not None:
            headers["Authorization"] = f"Bearer {acting}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._pool.urlopen(
                method, target, body=data, headers=headers, preload_content=True
            )
        except (MaxRetryError, HTTPError) as exc:
            raise self._unreachable(exc) from None
        text = response.data.decode("utf-8", errors="replace")
        if 200 <= response.status < 300:
            try:
                return json.loads(text)
            except ValueError:
                raise RegistryError(
                    f"registry server {self.url} answered {method} {path} with something "
                    f"that is not JSON ({text[:100]!r}); is {self.url} an artisync server?"
                ) from None
        raise self._refusal(response.status, text)

    def _unreachable(self, exc: Exception) -> RegistryError:
        reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
        if isinstance(reason, SSLError):
            return RegistryError(
                f"registry server {self.url}: TLS failed ({reason}); if its certificate "
                "is self-signed or from a private CA, give that CA's file (ca_file), and "
                "check that the URL's host name is the one the certificate names"
            )
        return RegistryUnavailableError(
            f"registry server {self.url} is unreachable ({reason}); check that "
            "`artisync server` runs there and listens on that address, and that this "
            "node can reach it (firewall, proxy)"
        )

    def _refusal(self, status: int, text: str) -> Exception:
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            message, kind = answer["error"], answer.get("kind")
            error = _KINDS.get(kind) if isinstance(kind, str) else None
            if error is RegistryUnavailableError:
                return RegistryUnavailableError(f"registry server {self.url}: {message}")
            if error is not None:
                return error(message)
            if status >= 500:
                return RegistryError(f"registry server {self.url}: {message}")
            return _BY_STATUS.get(status, RegistryError)(f"registry server {self.url}: {message}")
        if status >= 500:
            return RegistryUnavailableError(
                f"registry server {self.url} answered {status} ({text[:200]!r}); check that "
                "`artisync server` runs behind that address and can reach its database"
            )
        return _BY_STATUS.get(status, RegistryError)(
            f"registry server {self.url} answered {status} ({text[:200]!r}); is it an "
            "artisync server of this version?"
        )
