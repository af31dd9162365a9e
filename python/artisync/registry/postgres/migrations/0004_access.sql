-- Who may do what (issue 17): users, teams (W&B's entities), their members' roles, API
-- keys, and each project's visibility. server/access/ reads and writes these tables;
-- the registry's own tables do not refer to them, so a registry works the same with
-- or without anyone in them.
--
-- A user's own entity is a team of the user's name, with the user as its admin: an
-- entity is always a team, and names are unique across users and teams alike (as W&B's
-- entity names are). Projects name their entity as text, as before; a project whose
-- entity has no team (the embedded default `local`, imported from a node) is reached
-- by site admins only, until a team of that name is made.

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE,
    -- A site admin sees and changes everything; the bootstrap user is one.
    site_admin boolean NOT NULL DEFAULT false,
    created_at double precision NOT NULL
);

CREATE TABLE teams (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE,
    -- The user whose own entity this is (NULL for a shared team).
    personal_of bigint UNIQUE REFERENCES users (id),
    created_at double precision NOT NULL
);

CREATE TABLE members (
    team_id bigint NOT NULL REFERENCES teams (id),
    user_id bigint NOT NULL REFERENCES users (id),
    role text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

-- A key is stored only as HMAC-SHA256(server secret, key); `prefix` is its first
-- characters, enough to tell keys apart in a listing and to revoke one.
CREATE TABLE api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    prefix text COLLATE "C" NOT NULL UNIQUE,
    digest bytea NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    last_used_at double precision,
    revoked_at double precision
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);

ALTER TABLE projects ADD COLUMN visibility text NOT NULL DEFAULT 'private'
    CHECK (visibility IN ('private', 'public', 'open'));
