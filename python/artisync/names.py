"""Validation of the names users give artisync, with Weights & Biases' rules.

Artifact names, types, aliases, tags, project names, artifact entry paths and the
``[entity/][project/]name[:alias]`` strings that ``Api().artifact`` and
``use_artifact`` take are checked here, once, before anything reaches the spool, so a
bad name fails in the training script with a message that names the value, the rule
it broke and what is allowed.

The rules are W&B's (``wandb/sdk/artifacts/_validators.py``, ``Artifact.__init__`` in
``wandb/sdk/artifacts/artifact.py`` and ``validate_relpath`` in ``wandb/sdk/lib/paths.py``)
so that anything artisync accepts W&B accepts too. Where artisync is stricter, the
function's docstring says so.
"""

from __future__ import annotations

import os
import re
import string
from typing import Final

from artisync.errors import InvalidInputError

__all__ = [
    "DESCRIPTION_MAX_BYTES",
    "ENTRY_PATH_MAX_BYTES",
    "LABEL_MAX_LENGTH",
    "LIST_MAX_ITEMS",
    "NAME_MAX_LENGTH",
    "NOTES_MAX_BYTES",
    "PATH_COMPONENT_MAX_BYTES",
    "RUN_NAME_MAX_LENGTH",
    "RUN_TAG_MAX_LENGTH",
    "check_description",
    "check_list_length",
    "check_notes",
    "normalize_entry_path",
    "parse_artifact_path",
    "validate_alias",
    "validate_artifact_name",
    "validate_artifact_type",
    "validate_distributed_id",
    "validate_entity",
    "validate_project",
    "validate_run_id",
    "validate_run_label",
    "validate_run_tag",
    "validate_sweep_id",
    "validate_tag",
]

NAME_MAX_LENGTH: Final = 128
"""Longest artifact name, artifact type or project name W&B accepts, in characters."""

LABEL_MAX_LENGTH: Final = 128
"""Longest alias, tag, entity, run id, run group, job type or distributed id, in
characters: artisync's bound (W&B's SDK sets none), the same as W&B's for names."""

RUN_NAME_MAX_LENGTH: Final = 256
"""Longest run (display) name, in characters: artisync's bound, roomier than the
identifiers' because people put hyperparameters in run names."""

LIST_MAX_ITEMS: Final = 256
"""Most aliases, or tags, one artifact version may carry: artisync's bound."""

DESCRIPTION_MAX_BYTES: Final = 64 * 1024
"""Longest artifact description, in UTF-8 bytes: artisync's bound."""

NOTES_MAX_BYTES: Final = 64 * 1024
"""Longest run notes (W&B's ``run.notes``), in UTF-8 bytes: artisync's bound, the same as
an artifact description's (W&B's SDK sets none)."""

RUN_TAG_MAX_LENGTH: Final = 64
"""Longest run tag, in characters: W&B's bound (``wandb.init(tags=...)``)."""

PATH_COMPONENT_MAX_BYTES: Final = 255
"""Longest component of an entry path, in UTF-8 bytes: what Linux, macOS and Windows
file systems hold (``NAME_MAX``), so every entry can be downloaded."""

ENTRY_PATH_MAX_BYTES: Final = 4096
"""Longest entry path, in UTF-8 bytes: Linux's ``PATH_MAX``."""

# W&B's `Artifact(name=...)` pattern. `fullmatch` rather than W&B's `re.match(...$)`,
# which also lets a trailing newline through.
_ARTIFACT_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.\-]+")

# W&B's tag pattern: words of letters, digits, `_` and `-` (Unicode `\w`), separated by
# spaces.
_TAG_RE: Final = re.compile(r"[-\w]+(?: +[-\w]+)*")

_ALIAS_FORBIDDEN: Final = "/:"
_TYPE_FORBIDDEN: Final = "/:"
_PROJECT_FORBIDDEN: Final = "/\\#?%:"
_ENTITY_FORBIDDEN: Final = "/:"
# W&B refuses these in run ids: they separate the parts of a run path or URL.
_RUN_ID_FORBIDDEN: Final = "/\\#?%:"

# C0 and C1 control characters and DEL (Unicode category Cc): in a name they end up in
# paths, URLs and terminals (NUL truncates a C string; ESC [ 2 J clears a screen).
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_REGISTRY_PREFIX: Final = "wandb-registry-"
_RESERVED_TYPE_PREFIX: Final = "wandb-"
# Artifact types W&B keeps for its own artifacts, with the artifact-name prefix they
# reserve ("" reserves every name, so the type is unusable).
_RESERVED_NAME_PREFIX_BY_TYPE: Final = {"job": "", "run_table": "run-", "code": "source-"}

# W&B turns backslashes into separators only on Windows; elsewhere they are ordinary
# characters in an entry path.
_BACKSLASH_IS_SEPARATOR: Final = os.sep == "\\"
_DRIVE_LETTERS: Final = frozenset(string.ascii_letters)


def _fail(what: str, value: object, rule: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid {what} {value!r}: {rule}")


def _require_str(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(
            f"Invalid {what} {value!r}: must be a str, not {type(value).__name__}"
        )
    return value


def _forbidden_in(value: str, forbidden: str) -> str:
    """The characters of ``forbidden`` that occur in ``value``, as a readable list."""
    return ", ".join(repr(c) for c in forbidden if c in value)


def _shown(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters for a message: a million-character name
    must not become a million-character error."""
    return value if len(value) <= limit else f"{value[:limit]}..."


def _check_text(what: str, value: str, max_length: int) -> None:
    """The rules every name and label shares: a length bound and no control characters.

    The length is checked first, so a huge value costs no scan.
    """
    if len(value) > max_length:
        raise _fail(
            what,
            _shown(value, max_length),
            f"is {len(value):,} characters long; at most {max_length} are allowed",
        )
    if found := _CONTROL_RE.search(value):
        raise _fail(
            what,
            value,
            f"contains the control character {found.group()!r} at position {found.start()}; "
            "names may only hold printable characters",
        )


def _check_label(what: str, value: object, max_length: int, forbidden: str = "") -> str:
    """A non-empty str within ``max_length``, printable, without ``forbidden``."""
    text = _require_str(what, value)
    if not text:
        raise _fail(what, text, "must not be empty")
    _check_text(what, text, max_length)
    if bad := _forbidden_in(text, forbidden):
        raise _fail(what, text, f"must not contain {bad}")
    return text


def validate_artifact_name(name: str) -> str:
    """Return ``name`` if it is a valid artifact (collection) name, else raise.

    W&B's rule: 1 to 128 characters, each an ASCII letter, digit, ``-``, ``_`` or ``.``.
    artisync also refuses ``.`` and ``..``, which would name a directory rather than an
    artifact wherever the name becomes part of a path.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    _require_str("artifact name", name)
    if not name:
        raise _fail("artifact name", name, "must not be empty")
    if len(name) > NAME_MAX_LENGTH:  # the pattern below refuses control characters
        _check_text("artifact name", name, NAME_MAX_LENGTH)
    if not _ARTIFACT_NAME_RE.fullmatch(name):
        raise _fail(
            "artifact name",
            name,
            "may only contain ASCII letters, digits, '-', '_' and '.' "
            "(a version or alias goes after ':' only when referring to an artifact)",
        )
    if name in (".", ".."):
        raise _fail("artifact name", name, "'.' and '..' are not allowed as names")
    return name


def validate_artifact_type(
    type_: str, name: str | None = None, *, allow_reserved_names: bool = False
) -> str:
    """Return ``type_`` if it is a valid artifact type, else raise.

    W&B's rules: not empty, at most 128 characters, no ``/`` or ``:``, not starting with
    the reserved prefix ``wandb-``, and not ``job`` (every ``job`` name is reserved).
    When ``name`` is given, W&B's reserved name prefixes for its own types apply too:
    type ``run_table`` may not name an artifact ``run-*``, type ``code`` not ``source-*``
    (unless ``allow_reserved_names``: artisync's own ``run.log_code`` makes ``source-*``
    code artifacts, and the daemon accepts them, as W&B's server does).

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    _check_label("artifact type", type_, NAME_MAX_LENGTH, _TYPE_FORBIDDEN)
    if type_.startswith(_RESERVED_TYPE_PREFIX):
        raise _fail(
            "artifact type",
            type_,
            f"types starting with {_RESERVED_TYPE_PREFIX!r} are reserved for internal use; "
            "choose another type",
        )
    reserved_prefix = _RESERVED_NAME_PREFIX_BY_TYPE.get(type_)
    if reserved_prefix == "":
        raise _fail("artifact type", type_, "is reserved for internal use; choose another type")
    if (
        reserved_prefix is not None
        and name is not None
        and name.startswith(reserved_prefix)
        and not allow_reserved_names
    ):
        raise _fail(
            "artifact type",
            type_,
            f"artifacts of this type named {reserved_prefix}* are reserved for internal use; "
            f"rename {name!r} or choose another type",
        )
    return type_


def validate_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias (``latest``, ``best``, ``v3``), else raise.

    W&B's rule: no ``/`` and no ``:``, since both separate the parts of an artifact
    path. artisync also refuses the empty alias, which could never be looked up, control
    characters, and aliases over :data:`LABEL_MAX_LENGTH` characters.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    return _check_label("alias", alias, LABEL_MAX_LENGTH, _ALIAS_FORBIDDEN)


def validate_project(name: str) -> str:
    """Return ``name`` if it is a valid project name, else raise.

    W&B's rules: not empty, at most 128 characters, none of ``/ \\ # ? % :`` or line
    breaks (they would break the project's URL). A registry project
    (``wandb-registry-<registry>``) must have a non-empty registry part. artisync
    refuses every control character, not only line breaks.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    _check_label("project name", name, NAME_MAX_LENGTH, _PROJECT_FORBIDDEN)
    if name == _REGISTRY_PREFIX:
        raise _fail(
            "project name",
            name,
            f"a registry project needs a registry name after {_REGISTRY_PREFIX!r}",
        )
    return name


def validate_entity(entity: str) -> str:
    """Return ``entity`` (a user or team name) if it is valid, else raise.

    artisync's rules (W&B's server checks entities, its SDK does not): not empty, at
    most :data:`LABEL_MAX_LENGTH` characters, no ``/`` or ``:`` (they separate the parts
    of an artifact path), no control characters.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    return _check_label("entity", entity, LABEL_MAX_LENGTH, _ENTITY_FORBIDDEN)


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a valid run id, else raise.

    W&B's rule: none of ``/ \\ # ? % :``, which separate the parts of a run path or URL.
    artisync also refuses the empty id, control characters and ids over
    :data:`LABEL_MAX_LENGTH` characters.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    return _check_label("run id", run_id, LABEL_MAX_LENGTH, _RUN_ID_FORBIDDEN)


def validate_run_label(value: str, what: str) -> str:
    """Return a run's ``name``, ``group`` or ``job_type`` (``what`` says which) if valid.

    artisync's rules: not empty, printable, at most :data:`RUN_NAME_MAX_LENGTH`
    characters for a name and :data:`LABEL_MAX_LENGTH` for the others.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    limit = RUN_NAME_MAX_LENGTH if what == "run name" else LABEL_MAX_LENGTH
    return _check_label(what, value, limit)


def validate_distributed_id(distributed_id: str) -> str:
    """Return the ``distributed_id`` of a distributed artifact if valid, else raise.

    artisync's rules: not empty, printable, at most :data:`LABEL_MAX_LENGTH` characters
    (it is a run group by default, and bounded as one).

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    return _check_label("distributed_id", distributed_id, LABEL_MAX_LENGTH)


def check_description(description: str | None) -> str | None:
    """Return ``description`` if it is ``None`` or at most :data:`DESCRIPTION_MAX_BYTES`
    UTF-8 bytes, else raise. Line breaks and tabs are fine: listings escape what they
    show."""
    if description is None:
        return None
    text = _require_str("description", description)
    # A character is at most 4 bytes: most descriptions need no encoding to be measured.
    if len(text) * 4 > DESCRIPTION_MAX_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > DESCRIPTION_MAX_BYTES:
            raise InvalidInputError(
                f"Invalid description {_shown(text, 60)!r}: is {size:,} bytes long (UTF-8); "
                f"at most {DESCRIPTION_MAX_BYTES:,} are allowed. Put long text in a file of "
                "the artifact instead"
            )
    return text


def check_list_length(values: list[str], what: str, *, per: str = "artifact version") -> list[str]:
    """Return ``values`` (an artifact's aliases or tags, a run's tags) if there are at
    most :data:`LIST_MAX_ITEMS`, else raise naming ``what`` and what they belong to
    (``per``)."""
    if len(values) > LIST_MAX_ITEMS:
        raise InvalidInputError(
            f"Invalid {what}: {len(values):,} given; at most {LIST_MAX_ITEMS} are allowed per {per}"
        )
    return values


def validate_run_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid run tag (``wandb.init(tags=[...])``), else raise.

    W&B's rule for run tags, looser than for artifact tags (:func:`validate_tag`): 1 to
    :data:`RUN_TAG_MAX_LENGTH` characters of any kind, so ``v1.0`` or ``lr=0.1`` are
    fine. artisync also refuses control characters.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    return _check_label("run tag", tag, RUN_TAG_MAX_LENGTH)


def validate_sweep_id(sweep_id: str) -> str:
    """Return ``sweep_id`` if it is a valid sweep id, else raise.

    The rule of a run id (:func:`validate_run_id`): a sweep id is part of a sweep's path
    (``entity/project/sweep_id``) as a run id is of a run's.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    return _check_label("sweep id", sweep_id, LABEL_MAX_LENGTH, _RUN_ID_FORBIDDEN)


def check_notes(notes: str | None) -> str | None:
    """Return a run's ``notes`` if None or a str of at most :data:`NOTES_MAX_BYTES` UTF-8
    bytes without NUL, else raise. Line breaks, Markdown and LaTeX are fine (W&B's notes
    hold them)."""
    if notes is None:
        return None
    text = _require_str("run notes", notes)
    if len(text) * 4 > NOTES_MAX_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > NOTES_MAX_BYTES:
            raise InvalidInputError(
                f"Invalid run notes {_shown(text, 60)!r}: are {size:,} bytes long (UTF-8); "
                f"at most {NOTES_MAX_BYTES:,} are allowed. Put long text in a file logged "
                "as an artifact instead"
            )
    if "\x00" in text:
        raise InvalidInputError(
            f"Invalid run notes {_shown(text, 60)!r}: contain a NUL character; remove it"
        )
    return text


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid artifact tag, else raise.

    W&B's rule: one or more words of letters, digits, ``_`` or ``-`` (Unicode letters
    count), separated by single or repeated spaces; no leading or trailing space.
    artisync also bounds a tag to :data:`LABEL_MAX_LENGTH` characters.

    Raises:
        InvalidInputError: naming the bad value and the rule it broke.
    """
    _require_str("tag", tag)
    if len(tag) > LABEL_MAX_LENGTH:  # the pattern below refuses control characters
        _check_text("tag", tag, LABEL_MAX_LENGTH)
    if not _TAG_RE.fullmatch(tag):
        raise _fail(
            "tag",
            tag,
            "tags may only contain letters, digits, '-' and '_', in words separated by "
            "spaces, with no leading or trailing space",
        )
    return tag


def _entry_path_error(name: str, rule: str) -> InvalidInputError:
    return InvalidInputError(
        f"Invalid artifact entry path {name!r}: {rule}; "
        "use a path relative to the artifact root, such as 'dir/file.txt'"
    )


def normalize_entry_path(name: str) -> str:
    """Return the artifact entry path ``name`` in the form W&B stores it.

    The result uses ``/`` between components, with empty and ``.`` components dropped
    (``./a//b/`` becomes ``a/b``). As in W&B, backslashes are separators only on
    Windows. Rejected, as W&B rejects them: the empty path and ``.`` (the artifact root
    itself), absolute paths, Windows drive or UNC paths on every OS (``C:x``, ``\\x``;
    like W&B's pathlib, only an ASCII letter before ``:`` makes a drive),
    and any ``..`` component, even one that stays inside the root, so that no entry can
    be written outside the download directory. artisync also rejects NUL bytes and
    strings that cannot be encoded as UTF-8 (undecodable file names), paths over
    :data:`ENTRY_PATH_MAX_BYTES` bytes and components over
    :data:`PATH_COMPONENT_MAX_BYTES` bytes (no file system could hold them).

    Raises:
        InvalidInputError: naming the path and the rule it broke.
    """
    _require_str("artifact entry path", name)
    if not name:
        raise _entry_path_error(name, "must not be empty")
    # A character is at most 4 bytes in UTF-8: short paths need no encoding to measure.
    if len(name) * 4 > ENTRY_PATH_MAX_BYTES and _utf8_size(name) > ENTRY_PATH_MAX_BYTES:
        raise _entry_path_error(
            _shown(name, 200),
            f"is {_utf8_size(name):,} bytes long (UTF-8); at most {ENTRY_PATH_MAX_BYTES} "
            "are allowed",
        )
    if "\0" in name:
        raise _entry_path_error(name, "must not contain NUL bytes")
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise _entry_path_error(
                name, "is not valid Unicode (an undecodable file name?)"
            ) from None
    path = name.replace("\\", "/") if _BACKSLASH_IS_SEPARATOR else name
    if path[0] in "/\\":
        raise _entry_path_error(name, "must not be absolute")
    if path[1:2] == ":" and path[0] in _DRIVE_LETTERS:
        # Windows reads "X:" as a drive, so the entry would escape the download root there.
        raise _entry_path_error(name, "must not start with a drive letter and ':'")
    parts = [part for part in path.split("/") if part and part != "."]
    # A backslash is a separator on Windows, so "a\..\b" would traverse there as well.
    if ".." in parts or ("\\" in path and ".." in re.split(r"[\\/]", path)):
        raise _entry_path_error(name, "must not contain '..' components")
    if not parts:
        raise _entry_path_error(name, "names the artifact root itself, not an entry")
    for part in parts:
        if (
            len(part) * 4 > PATH_COMPONENT_MAX_BYTES
            and (size := _utf8_size(part)) > PATH_COMPONENT_MAX_BYTES
        ):
            raise _entry_path_error(
                _shown(name, 300),
                f"has a component of {size:,} bytes ({_shown(part, 40)!r}); file systems "
                f"hold at most {PATH_COMPONENT_MAX_BYTES} bytes per file or directory name",
            )
    return "/".join(parts)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def parse_artifact_path(path: str) -> tuple[str | None, str | None, str, str | None]:
    """Split ``[[entity/]project/]name[:alias_or_version]`` into its four parts.

    Parsing follows W&B's ``ArtifactPath.from_str`` (used by ``Api().artifact`` and
    ``use_artifact``): everything after the first ``:`` is the alias or version, and the
    part before it is split on ``/`` into one to three components. Missing parts are
    ``None``: ``"name"`` gives ``(None, None, "name", None)`` and ``"project/name:v3"``
    gives ``(None, "project", "name", "v3")``.

    Unlike W&B, which sends empty components and aliases containing ``/`` to the server
    to fail there, every part is validated here (name, project and alias rules of this
    module; a non-empty entity).

    Raises:
        InvalidInputError: naming the string and what is wrong with it.
    """
    _require_str("artifact path", path)
    collection, sep, alias = path.partition(":")
    parts = collection.split("/")
    if len(parts) > 3:
        raise InvalidInputError(
            f"Invalid artifact path {path!r}: has {len(parts)} '/'-separated parts; "
            "expected [[entity/]project/]name[:alias], e.g. 'my-team/my-project/model:v3'"
        )
    if "" in parts:
        raise InvalidInputError(
            f"Invalid artifact path {path!r}: has an empty part; "
            "expected [[entity/]project/]name[:alias], e.g. 'my-team/my-project/model:v3'"
        )
    if sep and not alias:
        raise InvalidInputError(
            f"Invalid artifact path {path!r}: nothing after ':'; "
            "give an alias or version such as 'latest' or 'v3', or drop the ':'"
        )
    try:
        entity = validate_entity(parts[-3]) if len(parts) == 3 else None
        project = validate_project(parts[-2]) if len(parts) >= 2 else None
        name = validate_artifact_name(parts[-1])
        alias_or_version = validate_alias(alias) if sep else None
    except InvalidInputError as exc:
        raise InvalidInputError(f"Invalid artifact path {path!r}: {exc}") from None
    return entity, project, name, alias_or_version
