"""The store: where blobs and manifests live, content-addressed, behind one interface."""

from artisync.store.base import (
    BlobItem,
    ManifestTooLargeError,
    ObjectNotFoundError,
    SourceChangedError,
    Store,
    StoreAccessError,
    StoreError,
    StoreUnavailableError,
    blob_key,
    manifest_key,
)
from artisync.store.local import LocalStore
from artisync.store.open import open_store

__all__ = [
    "BlobItem",
    "LocalStore",
    "ManifestTooLargeError",
    "ObjectNotFoundError",
    "SourceChangedError",
    "Store",
    "StoreAccessError",
    "StoreError",
    "StoreUnavailableError",
    "blob_key",
    "manifest_key",
    "open_store",
]
