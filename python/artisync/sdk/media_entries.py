"""How ``artifact.add(obj, name)`` stores the files of the images ``obj`` holds.

Two steps, so that a failure leaves the draft as it was. Writing the object's JSON
plans its image files (:class:`MediaPlan` is the :class:`MediaWriter` the images see):
each gets the entry path W&B gives it, and a path the draft already holds with other
content is refused before anything is added. Then :meth:`MediaPlan.add_files`
snapshots the planned files, undoing them all if one fails, and only then is the
object's own entry written.

The draft remembers the local path each file was added from (``add_file``, a mutable
``add_dir``, an image), as W&B does: an image made from a file already in the artifact
names that entry instead of storing the file again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from artisync.errors import InvalidInputError
from artisync.names import normalize_entry_path
from artisync.sdk.contents import Contents
from artisync.spool import StagedEntry

__all__ = ["MediaPlan"]


@dataclass(frozen=True, slots=True)
class _Planned:
    local_path: str
    digest: str


class MediaPlan:
    """The image files one ``artifact.add`` will store in the draft ``contents``.

    ``local_names`` maps the local paths files were added from to their entry paths.
    """

    def __init__(self, contents: Contents, local_names: Mapping[str, str]) -> None:
        self._contents = contents
        self._local_names = local_names
        self._planned: dict[str, _Planned] = {}
        self.planned_names: dict[str, str] = {}
        """Local path to entry path, for every file this plan stores or reuses."""

    def added_name(self, local_path: str) -> str | None:
        """The entry a file from ``local_path`` already is (or is planned to be)."""
        name = self.planned_names.get(local_path) or self._local_names.get(local_path)
        if name is not None and (name in self._planned or name in self._contents.files):
            return name
        return None

    def add_media_file(self, local_path: str, name: str, digest: str) -> str:
        """Plan ``local_path`` (MD5 ``digest``) as the entry ``name``; return the path."""
        path = normalize_entry_path(name)
        planned = self._planned.get(path)
        held = self._contents.files.get(path)
        if planned is not None:
            same = planned.digest == digest
        elif held is not None:
            same = isinstance(held, StagedEntry) and held.digest == digest
        else:
            same = True
            self._planned[path] = _Planned(local_path, digest)
        if not same:
            raise InvalidInputError(
                f"artifact {self._contents.name!r} already has an entry {path!r} with other "
                f"content than the image file {local_path!r}; an image's file goes where "
                "W&B puts it, so remove() that entry or rename the image's file"
            )
        self.planned_names[local_path] = path
        return path

    def add_files(self) -> None:
        """Snapshot every planned file into the draft; on any failure, none stays."""
        added: list[str] = []
        try:
            for path, planned in self._planned.items():
                self._contents.add_file(planned.local_path, path, "mutable", False)
                added.append(path)
                entry = self._contents.files[path]
                if isinstance(entry, StagedEntry) and entry.digest != planned.digest:
                    raise InvalidInputError(
                        f"the image file {planned.local_path!r} changed after the Image was "
                        "made, so the JSON written for it would not match; make the Image "
                        "again from the file as it is now"
                    )
        except BaseException:
            self.undo(added)
            raise

    def undo(self, paths: list[str] | None = None) -> None:
        """Remove the planned files added so far (all of them by default)."""
        for path in self._planned if paths is None else paths:
            if path in self._contents.files:
                self._contents.remove(path)
