"""``artisync server``'s settings: defaults, then the config file's ``[server]`` table,
then ``ARTISYNC_SERVER_*``, then flags; a bad value is refused naming its source; a
node reading the same config.toml ignores the server's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from artisync.config import Config
from artisync.errors import InvalidInputError
from artisync.server.settings import ServerSettings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("DB", "LISTEN", "CONFIG", "DB_POOL_SIZE", "MAX_BODY_BYTES"):
        monkeypatch.delenv(f"ARTISYNC_SERVER_{variable}", raising=False)


def test_file_then_environment_then_flags_each_override_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text(
        'store = "s3://bucket"\n[server]\ndb = "postgresql://file/db"\n'
        'listen = "0.0.0.0:9000"\ndb_pool_size = 4\n'
    )
    monkeypatch.setenv("ARTISYNC_SERVER_LISTEN", "127.0.0.1:9001")
    settings = ServerSettings.load(home=tmp_path, db="postgresql://flag/db")
    assert settings.db == "postgresql://flag/db"
    assert settings.listen == "127.0.0.1:9001"
    assert settings.db_pool_size == 4
    assert settings.max_body_bytes == 4 << 20
    # The node's settings in the same file load as before, the server's table ignored.
    assert Config.load(tmp_path).store == "s3://bucket"


def test_a_bad_value_is_refused_naming_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTISYNC_SERVER_MAX_BODY_BYTES", "lots")
    with pytest.raises(InvalidInputError, match="ARTISYNC_SERVER_MAX_BODY_BYTES='lots'"):
        ServerSettings.load(home=tmp_path, db="postgresql://h/db")


def test_unknown_keys_missing_database_and_half_tls_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('[server]\ndatabase = "x"\n')
    with pytest.raises(InvalidInputError, match="unknown setting 'database'"):
        ServerSettings.load(config)
    with pytest.raises(InvalidInputError, match="no registry database given"):
        ServerSettings.load(home=tmp_path)
    with pytest.raises(InvalidInputError, match="both a certificate and its key"):
        ServerSettings.load(home=tmp_path, db="postgresql://h/db", tls_cert=tmp_path / "c")
