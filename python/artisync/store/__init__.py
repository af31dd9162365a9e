"""The store: where blobs and manifests live, content-addressed, behind one interface."""

from artisync.store.base import (
    BlobItem,
    CallerRights,
    HashingPut,
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
from artisync.store.open import open_directory, open_store, shared_store

__all__ = [
    "BlobItem",
    "CallerRights",
    "HashingPut",
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
    "open_directory",
    "open_store",
    "shared_store",
]
