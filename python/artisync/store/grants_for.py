"""Which presigned transfers a store offers: :func:`grants_for`.

Only bucket stores have them (S3: presigned PUTs, parts and GETs; GCS: resumable
sessions and signed GETs); a local or shared-filesystem store has none, since nodes
reach it as files. A function beside the stores, not a method of theirs, so that the
stores do not import the grants that are written against them.
"""

from __future__ import annotations

from artisync.store.base import Store
from artisync.store.gcs import GCSStore
from artisync.store.gcs_grants import GcsGrants
from artisync.store.grants import Grants
from artisync.store.s3 import S3Store
from artisync.store.s3_grants import S3Grants

__all__ = ["grants_for"]


def grants_for(store: Store) -> Grants | None:
    """The presigned transfers of ``store``, or None when it has none."""
    if isinstance(store, S3Store):
        return S3Grants(store)
    if isinstance(store, GCSStore):
        return GcsGrants(store)
    return None
