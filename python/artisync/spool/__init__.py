"""The spool: the durable queue between the SDK and the node's daemon."""

from artisync.spool.spool import (
    FOLDERS,
    MAX_SUBMISSION_BYTES,
    SUBMISSION_ID,
    Spool,
    next_seq,
    parse_name,
    seq_time_ns,
)
from artisync.spool.submission import (
    FORMAT,
    FORMAT_VERSION,
    ArtifactInfo,
    BaseInfo,
    DirEntry,
    Entry,
    FileEntry,
    ReferenceEntry,
    RunInfo,
    SealedKey,
    StagedEntry,
    StagedListEntry,
    Submission,
)

__all__ = [
    "FOLDERS",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_SUBMISSION_BYTES",
    "SUBMISSION_ID",
    "ArtifactInfo",
    "BaseInfo",
    "DirEntry",
    "Entry",
    "FileEntry",
    "ReferenceEntry",
    "RunInfo",
    "SealedKey",
    "Spool",
    "StagedEntry",
    "StagedListEntry",
    "Submission",
    "next_seq",
    "parse_name",
    "seq_time_ns",
]
