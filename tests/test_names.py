"""Names, aliases, tags, entry paths and artifact paths, checked with W&B's rules."""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from pathlib import PurePosixPath, PureWindowsPath

import pytest

from artisync.errors import InvalidInputError
from artisync.names import (
    normalize_entry_path,
    parse_artifact_path,
    validate_alias,
    validate_artifact_name,
    validate_artifact_type,
    validate_project,
    validate_tag,
)

posix_only = pytest.mark.skipif(os.sep != "/", reason="backslash is a separator on Windows")


def raises_naming(
    value: str, rule: str = ""
) -> AbstractContextManager[pytest.ExceptionInfo[InvalidInputError]]:
    """Expect InvalidInputError whose message quotes ``value`` (and mentions ``rule``)."""
    pattern = re.escape(repr(value)) + (f".*{re.escape(rule)}" if rule else "")
    return pytest.raises(InvalidInputError, match=re.compile(pattern, re.DOTALL))


# --- artifact names -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "data-set_v1.2", "A", "a" * 128, "..notevil", "1"])
def test_artifact_name_of_letters_digits_dash_underscore_dot_is_accepted(name: str) -> None:
    assert validate_artifact_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "must not be empty"),
        ("a/b", "may only contain"),
        ("name:v3", "may only contain"),
        ("with space", "may only contain"),
        ("modèle", "may only contain"),
        ("trailing\n", "may only contain"),
        (".", "not allowed"),
        ("..", "not allowed"),
    ],
)
def test_artifact_name_outside_the_allowed_characters_is_rejected(name: str, rule: str) -> None:
    with raises_naming(name, rule):
        validate_artifact_name(name)


def test_artifact_name_longer_than_128_characters_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="129 characters long; at most 128"):
        validate_artifact_name("a" * 129)


# --- artifact types -------------------------------------------------------------------


@pytest.mark.parametrize("type_", ["dataset", "model", "wandbtype", "jobs", "code", "run_table"])
def test_ordinary_artifact_types_are_accepted(type_: str) -> None:
    assert validate_artifact_type(type_) == type_


@pytest.mark.parametrize(
    ("type_", "rule"),
    [
        ("", "must not be empty"),
        ("a/b", "'/'"),
        ("a:b", "':'"),
        ("wandb-history", "reserved"),
        ("wandb-", "reserved"),
        ("job", "reserved"),
    ],
)
def test_bad_or_reserved_artifact_types_are_rejected(type_: str, rule: str) -> None:
    with raises_naming(type_, rule):
        validate_artifact_type(type_)


def test_artifact_type_longer_than_128_characters_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="at most 128"):
        validate_artifact_type("t" * 129)


@pytest.mark.parametrize(("type_", "name"), [("run_table", "run-abc"), ("code", "source-x")])
def test_wandb_internal_name_prefixes_are_reserved_for_their_types(type_: str, name: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(repr(name))):
        validate_artifact_type(type_, name=name)


@pytest.mark.parametrize(("type_", "name"), [("run_table", "table"), ("code", "my-code")])
def test_wandb_internal_types_accept_other_names(type_: str, name: str) -> None:
    assert validate_artifact_type(type_, name=name) == type_


# --- aliases and tags -----------------------------------------------------------------


@pytest.mark.parametrize("alias", ["latest", "v3", "best", "best model", "é-ok", "a.b"])
def test_aliases_without_slash_or_colon_are_accepted(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "rule"), [("", "empty"), ("a/b", "'/'"), ("a:b", "':'"), ("x/y:z", "'/', ':'")]
)
def test_aliases_with_slash_colon_or_nothing_are_rejected(alias: str, rule: str) -> None:
    with raises_naming(alias, rule):
        validate_alias(alias)


@pytest.mark.parametrize(
    "tag", ["tag", "my-tag", "my_tag", "two words", "wide   gap", "数据", "v1-2_x y"]
)
def test_tags_of_words_separated_by_spaces_are_accepted(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", " lead", "trail ", "a.b", "a/b", "tab\tsep", "line\n", "a:b"])
def test_tags_with_other_characters_or_edge_spaces_are_rejected(tag: str) -> None:
    with raises_naming(tag, "letters, digits"):
        validate_tag(tag)


# --- projects -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["my-project", "m", "wandb-registry-a", "p" * 128, "My Project"])
def test_project_names_are_accepted(name: str) -> None:
    assert validate_project(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "must not be empty"),
        ("wandb-registry-", "registry name"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\'"),
        ("a#b", "'#'"),
        ("a?b", "'?'"),
        ("a%b", "'%'"),
        ("a:b", "':'"),
        ("a\nb", "'\\n'"),
        ("a\rb", "'\\r'"),
    ],
)
def test_project_names_with_url_breaking_characters_are_rejected(name: str, rule: str) -> None:
    with raises_naming(name, rule):
        validate_project(name)


def test_project_name_longer_than_128_characters_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="at most 128"):
        validate_project("p" * 129)


# --- entry paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("file.txt", "file.txt"),
        ("nested/file.txt", "nested/file.txt"),
        ("./a", "a"),
        ("a//b", "a/b"),
        ("a/./b/", "a/b"),
        (".//a/.//b", "a/b"),
        ("dir with space/é.txt", "dir with space/é.txt"),
        ("...", "..."),
        ("..a/b..", "..a/b.."),
        ("1:v0", "1:v0"),
        ("a/b:c", "a/b:c"),
    ],
)
def test_entry_paths_are_stored_with_single_forward_slashes(name: str, stored: str) -> None:
    assert normalize_entry_path(name) == stored


@posix_only
def test_backslash_is_an_ordinary_character_off_windows_as_in_wandb() -> None:
    assert normalize_entry_path("a\\b.txt") == "a\\b.txt"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "empty"),
        (".", "artifact root"),
        ("./", "artifact root"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("a\\..\\b", "'..'"),
        ("/x", "absolute"),
        ("//server/share/x", "absolute"),
        ("\\x", "absolute"),
        ("C:\\x", "drive"),
        ("C:x", "drive"),
        ("a:b", "drive"),
        ("a\x00b", "NUL"),
        ("bad\udcffname", "Unicode"),
    ],
)
def test_entry_paths_that_escape_the_root_or_cannot_be_stored_are_rejected(
    name: str, rule: str
) -> None:
    with raises_naming(name, rule):
        normalize_entry_path(name)


def wandb_rule(name: str) -> str | None:
    """W&B's entry-path rule restated with pathlib (POSIX host): the stored path, or None."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if (
        str(posix) == "."
        or posix.anchor
        or ".." in posix.parts
        or windows.anchor
        or ".." in windows.parts
    ):
        return None
    return str(posix)


@posix_only
@pytest.mark.parametrize(
    "name",
    [
        "a",
        "a/b",
        "./a/./b//c/",
        "a/..",
        "..",
        "...",
        "/a",
        "//a",
        "\\a",
        "a\\b",
        "a\\..\\b",
        "x:y",
        "a/x:y",
        "C:/x",
        " a / b ",
        "a/.b/.",
    ],
)
def test_entry_path_rules_agree_with_wandb(name: str) -> None:
    expected = wandb_rule(name)
    if expected is None:
        with pytest.raises(InvalidInputError):
            normalize_entry_path(name)
    else:
        assert normalize_entry_path(name) == expected


# --- artifact paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("entity/project/name:alias", ("entity", "project", "name", "alias")),
        ("project/name:v3", (None, "project", "name", "v3")),
        ("name:latest", (None, None, "name", "latest")),
        ("name", (None, None, "name", None)),
        ("project/name", (None, "project", "name", None)),
        (
            "my-team/wandb-registry-model/resnet:production",
            (
                "my-team",
                "wandb-registry-model",
                "resnet",
                "production",
            ),
        ),
    ],
)
def test_artifact_paths_split_into_entity_project_name_and_alias(
    path: str, parts: tuple[str | None, str | None, str, str | None]
) -> None:
    assert parse_artifact_path(path) == parts


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("", "empty part"),
        ("a/b/c/d", "4 '/'-separated parts"),
        ("/name", "empty part"),
        ("project//name", "empty part"),
        ("project/:v1", "empty part"),
        ("name:", "nothing after ':'"),
        ("name:alias/with/slashes", "alias"),
        ("name:v0:extra", "alias"),
        ("pro?ject/name", "project name"),
        ("bad name:v1", "artifact name"),
    ],
)
def test_malformed_artifact_paths_are_rejected_naming_the_path(path: str, rule: str) -> None:
    with raises_naming(path, rule):
        parse_artifact_path(path)
