"""What the GCS store needs to judge failures and credentials: HTTP statuses, which
failures are transient, the checks of credentials made before any network, and the
check of credentials and bucket when the store opens."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import aiohttp

from artisync.store.base import StoreAccessError, StoreUnavailableError

if TYPE_CHECKING:
    from gcloud.aio.auth import Token
    from gcloud.aio.storage import Storage

__all__ = [
    "CREDENTIAL_HINT",
    "ENV_CREDENTIALS",
    "BucketPlace",
    "check_bucket",
    "check_credential_file",
    "describe",
    "on_gce",
    "raise_for_status",
    "status_of",
    "transient",
]

CREDENTIAL_HINT = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or run `gcloud auth "
    "application-default login`); for an emulator, set STORAGE_EMULATOR_HOST"
)

ENV_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"


def check_credential_file(path: str | None) -> None:
    """Fail before any network for credentials that cannot work."""
    if path:
        try:
            data = json.loads(Path(path).read_bytes())
        except OSError as e:
            raise StoreAccessError(
                f"GOOGLE_APPLICATION_CREDENTIALS={path}: cannot read it ({e.strerror}); "
                "point it at a service-account key JSON file"
            ) from None
        except ValueError:
            raise StoreAccessError(
                f"GOOGLE_APPLICATION_CREDENTIALS={path}: not a JSON credentials file; "
                "point it at a service-account key JSON file"
            ) from None
        if not isinstance(data, dict) or "type" not in data:
            raise StoreAccessError(
                f"GOOGLE_APPLICATION_CREDENTIALS={path}: has no 'type': not a Google "
                "credentials file"
            )
        return
    adc = (
        Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
        / "application_default_credentials.json"
    )
    if adc.exists() or on_gce():
        return
    raise StoreAccessError(f"no Google Cloud credentials found: {CREDENTIAL_HINT}")


class BucketPlace(Protocol):
    """Where a GCS store's bucket is, as its error messages name it."""

    url: str
    bucket: str
    api_root: str
    emulated: bool


async def check_bucket(store: BucketPlace, storage: Storage, token: Token | None) -> None:
    """Raise :class:`StoreAccessError`, saying what to set, unless the credentials get a
    token and ``store``'s bucket answers."""
    try:
        if token is not None:
            try:
                await token.refresh(timeout=10)
            except Exception as e:  # gcloud-aio-auth raises bare Exceptions too
                raise StoreAccessError(
                    f"store {store.url}: the Google credentials were refused or the "
                    f"token service did not answer: {describe(e)}; {CREDENTIAL_HINT}"
                ) from None
        await storage.get_bucket_metadata(store.bucket, timeout=15)
    except aiohttp.ClientResponseError as e:
        if e.status == 404:
            raise StoreAccessError(
                f"store {store.url}: bucket {store.bucket!r} does not exist at "
                f"{store.api_root}: create it, or fix the URL"
            ) from None
        if e.status in (401, 403):
            raise StoreAccessError(
                f"store {store.url}: access denied to bucket {store.bucket!r} (HTTP "
                f"{e.status}): the credentials are wrong or lack storage.buckets.get; "
                f"{CREDENTIAL_HINT}"
            ) from None
        raise StoreAccessError(f"store {store.url}: {describe(e)}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        hint = "check STORAGE_EMULATOR_HOST" if store.emulated else "check the network"
        raise StoreAccessError(
            f"store {store.url}: cannot reach {store.api_root}: {describe(e)}; {hint}"
        ) from None


def on_gce() -> bool:
    """On a GCE VM (whose metadata server gives credentials), as google-auth tells."""
    if os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_ROOT"):
        return True
    try:
        return Path("/sys/class/dmi/id/product_name").read_text().startswith("Google")
    except OSError:
        return False


async def raise_for_status(response: aiohttp.ClientResponse) -> None:
    """aiohttp's ``raise_for_status`` with GCS's error message kept."""
    if response.status >= 400:
        text = (await response.text(errors="replace"))[:500]
        raise aiohttp.ClientResponseError(
            response.request_info,
            response.history,
            status=response.status,
            message=f"{response.reason}: {text}",
            headers=response.headers,
        )


def status_of(e: BaseException) -> int | None:
    """The HTTP status behind a failed call, if the server answered."""
    cause = e.__cause__ if isinstance(e, StoreUnavailableError) else e
    return cause.status if isinstance(cause, aiohttp.ClientResponseError) else None


def transient(e: BaseException) -> bool:
    if isinstance(e, aiohttp.ClientResponseError):
        return e.status in (408, 429) or e.status >= 500
    return isinstance(e, aiohttp.ClientError | OSError | TimeoutError)


def describe(e: BaseException) -> str:
    if isinstance(e, aiohttp.ClientResponseError):
        return f"HTTP {e.status}: {e.message}"
    return str(e) or type(e).__name__
