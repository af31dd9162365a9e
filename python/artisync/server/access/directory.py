"""Users, teams, members, API keys and project visibility in the server's database.

:class:`Directory` is the one place that reads and writes those tables
(``postgres/migrations/0004_access.sql``): the admin commands change them, the server
looks callers and projects up in them. Every change sends a notification on
:data:`CHANGES`, so every server process drops what it cached (``access.cache``) at
once: a revoked key stops working on the next request, whichever process gets it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import validate_entity
from artisync.registry.postgres.connection import describe_dsn
from artisync.registry.postgres.schema import migrate
from artisync.server.access import keys
from artisync.server.access.policy import ROLES, VISIBILITIES

__all__ = ["CHANGES", "Directory", "Identity", "KeyInfo"]

CHANGES: Final = "artisync_access"
"""The notification channel every change to users, members, keys or visibility is
announced on."""

Conn = psycopg.Connection[TupleRow]

_NAMES_LOCK: Final = 0x61727473_6E616D65  # "artsname": creations of users and teams


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid key belongs to, and their role in each team they are in."""

    key_id: int
    user: str
    site_admin: bool
    roles: dict[str, str]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as ``list-keys`` shows it: never the key, its prefix."""

    prefix: str
    owner: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


class Directory:
    """The access tables of one database, through short connections of its own.

    ``secret`` is the server secret keys are hashed under; the admin commands and every
    server process must use the same one.
    """

    def __init__(self, dsn: str, secret: bytes) -> None:
        self.dsn = dsn
        self.where = describe_dsn(dsn)
        self._secret = secret

    @contextmanager
    def _connect(self) -> Iterator[Conn]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema up to date (what opening the registry does)."""
        with self._connect() as conn:
            migrate(conn, self.where)

    # -- lookups (the server's) ---------------------------------------------------------

    def identify(self, conn: Conn, key: str) -> Identity | None:
        """The owner of ``key`` if it is a valid, unrevoked key, else None."""
        row = conn.execute(
            "SELECT k.id, u.id, u.name, u.site_admin FROM api_keys AS k"
            " JOIN users AS u ON u.id = k.user_id"
            " WHERE k.digest = %s AND k.revoked_at IS NULL",
            (keys.digest(self._secret, key),),
        ).fetchone()
        if row is None:
            return None
        roles = conn.execute(
            "SELECT t.name, m.role FROM members AS m JOIN teams AS t ON t.id = m.team_id"
            " WHERE m.user_id = %s",
            (row[1],),
        ).fetchall()
        return Identity(int(row[0]), str(row[2]), bool(row[3]), {str(t): str(r) for t, r in roles})

    @staticmethod
    def visibility(conn: Conn, entity: str, project: str) -> str | None:
        """The project's visibility, or None when it does not exist (yet)."""
        row = conn.execute(
            "SELECT visibility FROM projects WHERE entity = %s AND name = %s", (entity, project)
        ).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def version_place(conn: Conn, version_id: str) -> tuple[str, str] | None:
        """``(entity, project)`` of a version, live or deleted; None when unknown."""
        row = conn.execute(
            "SELECT p.entity, p.name FROM versions AS v"
            " JOIN collections AS c ON c.id = v.collection_id"
            " JOIN projects AS p ON p.id = c.project_id WHERE v.id = %s",
            (version_id,),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    @staticmethod
    def touch(conn: Conn, key_ids: list[int]) -> None:
        """Record that these keys were used now (``list-keys`` shows when)."""
        conn.execute(
            "UPDATE api_keys SET last_used_at = %s WHERE id = ANY(%s)", (time.time(), key_ids)
        )

    # -- the admin commands ---------------------------------------------------------------

    def create_user(self, name: str, *, site_admin: bool = False) -> None:
        """A user, and their own entity (a team of their name they administer)."""
        validate_entity(name)
        with self._connect() as conn, conn.transaction():
            self._refuse_taken(conn, name)
            now = time.time()
            user = conn.execute(
                "INSERT INTO users (name, site_admin, created_at) VALUES (%s, %s, %s) RETURNING id",
                (name, site_admin, now),
            ).fetchone()
            assert user is not None
            team = conn.execute(
                "INSERT INTO teams (name, personal_of, created_at) VALUES (%s, %s, %s)"
                " RETURNING id",
                (name, user[0], now),
            ).fetchone()
            assert team is not None
            conn.execute(
                "INSERT INTO members (team_id, user_id, role) VALUES (%s, %s, 'admin')",
                (team[0], user[0]),
            )
            _announce(conn)

    def create_team(self, name: str) -> None:
        """A team (an entity several users share); ``add_member`` fills it."""
        validate_entity(name)
        with self._connect() as conn, conn.transaction():
            self._refuse_taken(conn, name)
            conn.execute(
                "INSERT INTO teams (name, created_at) VALUES (%s, %s)", (name, time.time())
            )

    def add_member(self, team: str, user: str, role: str) -> None:
        """Put ``user`` in ``team`` with ``role``, or change their role there."""
        if role not in ROLES:
            raise InvalidInputError(f"role {role!r} is none of {', '.join(ROLES)}")
        with self._connect() as conn, conn.transaction():
            team_id, user_id = self._team(conn, team), self._user(conn, user)
            conn.execute(
                "INSERT INTO members (team_id, user_id, role) VALUES (%s, %s, %s)"
                " ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role",
                (team_id, user_id, role),
            )
            _announce(conn)

    def remove_member(self, team: str, user: str) -> None:
        """Take ``user`` out of ``team``."""
        with self._connect() as conn, conn.transaction():
            team_id, user_id = self._team(conn, team), self._user(conn, user)
            gone = conn.execute(
                "DELETE FROM members WHERE team_id = %s AND user_id = %s", (team_id, user_id)
            ).rowcount
            if not gone:
                raise NotFoundError(f"user {user!r} is not a member of team {team!r}")
            _announce(conn)

    def create_key(self, user: str, key: str | None = None) -> str:
        """A new key for ``user`` (``key``, when the operator chose it); the only time it
        is ever seen in clear."""
        key = keys.new_key() if key is None else keys.check_chosen(key)
        with self._connect() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO api_keys (user_id, prefix, digest, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (
                    self._user(conn, user),
                    keys.prefix_of(key),
                    keys.digest(self._secret, key),
                    time.time(),
                ),
            )
        return key

    def revoke_key(self, prefix: str) -> str:
        """Revoke the key ``prefix`` names (at once, on every server process); return its
        owner."""
        with self._connect() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE api_keys AS k SET revoked_at = %s FROM users AS u"
                " WHERE k.prefix = %s AND u.id = k.user_id AND k.revoked_at IS NULL"
                " RETURNING u.name",
                (time.time(), prefix),
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"no unrevoked key starts {prefix!r}; `artisync server admin list-keys` "
                    f"shows each key's first {keys.PREFIX_LENGTH} characters"
                )
            _announce(conn)
        return str(row[0])

    def list_keys(self, user: str | None = None) -> list[KeyInfo]:
        """Every key (of ``user``), oldest first."""
        with self._connect() as conn:
            where, params = ("", ()) if user is None else ("WHERE u.name = %s", (user,))
            if user is not None:
                self._user(conn, user)
            rows = conn.execute(
                "SELECT k.prefix, u.name, k.created_at, k.last_used_at, k.revoked_at"
                f" FROM api_keys AS k JOIN users AS u ON u.id = k.user_id {where}"
                " ORDER BY k.id",
                params,
            ).fetchall()
        return [KeyInfo(str(p), str(o), float(c), lu, rv) for p, o, c, lu, rv in rows]

    def create_project(self, entity: str, project: str, visibility: str) -> bool:
        """Create the project with ``visibility``; False when it exists already."""
        with self._connect() as conn, conn.transaction():
            made = conn.execute(
                "INSERT INTO projects (entity, name, created_at, visibility)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (entity, name) DO NOTHING",
                (entity, project, time.time(), visibility),
            ).rowcount
            if made:
                _announce(conn)
        return bool(made)

    def set_visibility(self, entity: str, project: str, visibility: str) -> None:
        """Make the project private, public or open."""
        if visibility not in VISIBILITIES:
            raise InvalidInputError(
                f"visibility {visibility!r} is none of {', '.join(VISIBILITIES)}"
            )
        with self._connect() as conn, conn.transaction():
            changed = conn.execute(
                "UPDATE projects SET visibility = %s WHERE entity = %s AND name = %s",
                (visibility, entity, project),
            ).rowcount
            if not changed:
                raise NotFoundError(f"no project {entity}/{project}")
            _announce(conn)

    def users(self) -> int:
        """How many users there are (none: the server makes its bootstrap admin)."""
        with self._connect() as conn:
            row = conn.execute("SELECT count(*) FROM users").fetchone()
        return 0 if row is None else int(row[0])

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _refuse_taken(conn: Conn, name: str) -> None:
        # One namespace over two tables: the check and the insert after it hold a lock
        # no other creation passes, so two processes cannot both find a name free.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_NAMES_LOCK,))
        taken = conn.execute(
            "SELECT 1 FROM users WHERE name = %s UNION ALL SELECT 1 FROM teams WHERE name = %s",
            (name, name),
        ).fetchone()
        if taken is not None:
            raise InvalidInputError(
                f"{name!r} is taken: users and teams share one namespace (each is an "
                "entity); choose another name"
            )

    @staticmethod
    def _user(conn: Conn, name: str) -> int:
        row = conn.execute("SELECT id FROM users WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise NotFoundError(
                f"no user {name!r}; create it with `artisync server admin create-user`"
            )
        return int(row[0])

    @staticmethod
    def _team(conn: Conn, name: str) -> int:
        row = conn.execute("SELECT id FROM teams WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise NotFoundError(
                f"no team {name!r}; create it with `artisync server admin create-team`"
            )
        return int(row[0])


def _announce(conn: Conn) -> None:
    """Tell every server process to forget what it cached (sent at commit)."""
    conn.execute(f"NOTIFY {CHANGES}")
