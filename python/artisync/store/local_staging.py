"""The local store's :meth:`~artisync.store.Store.put_hashing`: files copied in the read
that hashes them, one batch named while the next is copied.

A batch goes through three steps, two of them the local store's own
(:meth:`~artisync.store.LocalStore.stage_files`, then
:meth:`~artisync.store.LocalStore.put_staged`):

1. *staged*: each file hashed and, where its blob is missing, copied into ``tmp/`` (a
   small one written at its blob name, without permission bits until it is whole,
   under the batch's journal); nothing is trusted by readers yet;
2. *checked* by the caller, which holds the digests and may refuse the batch by
   raising: the batch is then removed (:meth:`~artisync.store.LocalStore.discard_staged`);
3. *named*, in a task of its own, while the next batch is staged: one ``syncfs``, then
   the renames. If the store fails here, the batch is removed too and the caller told;
   its files are then stored from their sources, with retries.

Blobs written in place stay when a batch is removed: they are whole, and another batch
may already have found them stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from artisync import _core
from artisync.store.base import CallerRights, HashingPut, StoreUnavailableError

__all__ = ["LocalHashingPut", "StagedFiles"]


@dataclass(slots=True)
class StagedFiles:
    """A batch :meth:`LocalStore.stage_files` copied into ``tmp/``, not named yet."""

    digests: list[_core.FileDigest]  # one per file, in order
    files: list[tuple[str, str]]  # (md5_hex, copy in tmp/ or the blob itself) to name
    journal: str  # of the blobs written in place (there if any were)


class Staging(Protocol):
    """What :class:`LocalHashingPut` needs of the local store."""

    def stage_files(
        self, files: Sequence[tuple[str | Path, int | None]], caller: CallerRights | None = None
    ) -> AsyncGenerator[StagedFiles, None]:
        """Hash and copy the files, a batch at a time."""

    async def put_staged(self, staged: StagedFiles) -> int:
        """Name a staged batch."""

    async def discard_staged(self, staged: StagedFiles) -> None:
        """Remove what a staged batch copied."""


class LocalHashingPut(HashingPut):
    """One run of the local store's fused hash-and-copy over ``files``."""

    def __init__(
        self,
        store: Staging,
        files: Sequence[tuple[str | Path, int | None]],
        caller: CallerRights | None,
        on_failure: Callable[[StoreUnavailableError], None] | None,
    ) -> None:
        self._store = store
        self._files = files
        self._caller = caller
        self._on_failure = on_failure
        self._namings: list[asyncio.Future[range]] = []

    async def batches(self) -> AsyncGenerator[list[_core.FileDigest], None]:
        """Each batch's digests; a batch is named once the next one is asked for (or
        the iteration ends), and removed if the caller raises instead."""
        done = 0
        staging = self._store.stage_files(self._files, self._caller)
        async with contextlib.aclosing(staging) as staged_batches:
            async for staged in staged_batches:
                first, done = done, done + len(staged.digests)
                try:
                    yield staged.digests
                except BaseException:  # refused (aclose, or an error thrown in)
                    await self._store.discard_staged(staged)
                    raise
                naming = self._name(staged, range(first, done))
                self._namings.append(asyncio.ensure_future(naming))

    async def _name(self, staged: StagedFiles, indexes: range) -> range:
        """Name a checked batch; the indexes of its files, or none if the store failed."""
        try:
            await self._store.put_staged(staged)
        except StoreUnavailableError as e:
            if self._on_failure is not None:
                self._on_failure(e)
            await self._store.discard_staged(staged)
            return range(0)
        return indexes

    async def stored(self) -> set[int]:
        """The indexes of the files whose batches were named."""
        named = await asyncio.gather(*self._namings)
        return {index for indexes in named for index in indexes}

    async def settle(self) -> None:
        """Wait for every naming started so far to end."""
        if self._namings:
            await asyncio.wait(self._namings)
