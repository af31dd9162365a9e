-- The registry's tables on PostgreSQL: the SQLite backend's schema (sqlite/schema.py,
-- versions 1 and 2) in one step, with these differences:
--
-- * Timestamps are epoch seconds in double precision, as the records hand them out, so
--   a value reads back bit for bit and created_at + ttl_seconds is the same sum in the
--   database and in Python. They come from the database's clock: every server process
--   shares it, so creation times follow version numbers whichever host committed.
-- * JSON is `json`, not `jsonb`: it keeps the text as logged (key order, duplicate keys,
--   number spelling) exactly as the SQLite text column does; nothing queries inside it.
-- * Names and aliases sort with COLLATE "C" (code point order, what SQLite and Python's
--   sorted() do), whatever locale the database was created with.
-- * A submission's `created` is a boolean; surrogate keys are identity columns.
--
-- The partial indexes spell their condition literally (state = 'COMMITTED') and the
-- queries in postgres/queries.py repeat it: a bound parameter would not match it in a
-- generic plan, which psycopg gets once it prepares a statement.

CREATE TABLE projects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    created_at double precision NOT NULL,
    CONSTRAINT projects_by_name UNIQUE (entity, name)
);

CREATE TABLE runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    run_id text COLLATE "C" NOT NULL,
    name text,
    job_type text,
    group_name text,
    config json NOT NULL,
    summary json NOT NULL DEFAULT '{}',
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'finished', 'crashed')),
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    CONSTRAINT runs_by_project UNIQUE (project_id, run_id)
);
-- Lineage calls name a run by its id alone; this resolves it without a scan.
CREATE INDEX runs_by_run_id ON runs (run_id);

-- The row each commit of the collection locks (SELECT ... FOR UPDATE): version numbers
-- are max(idx) + 1 read under that lock, so they follow commit order with no gap and
-- no two commits ever race for one number.
CREATE TABLE collections (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    name text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    created_at double precision NOT NULL,
    CONSTRAINT collections_by_name UNIQUE (project_id, name)
);

CREATE TABLE versions (
    id text COLLATE "C" PRIMARY KEY,
    collection_id bigint NOT NULL REFERENCES collections (id),
    idx integer NOT NULL CHECK (idx >= 0),
    digest text COLLATE "C" NOT NULL,
    manifest_key text NOT NULL,
    size bigint NOT NULL,
    file_count bigint NOT NULL,
    description text,
    metadata json NOT NULL,
    created_at double precision NOT NULL,
    run_id bigint REFERENCES runs (id),
    ttl_seconds double precision,
    expires_at double precision,
    state text NOT NULL CHECK (state IN ('COMMITTED', 'DELETED')),
    deleted_at double precision,
    -- "vN", the top number counting tombstones, and listing in order.
    CONSTRAINT versions_by_index UNIQUE (collection_id, idx)
);
-- Live versions only: `latest` and counts are one step however many of the newest
-- versions were deleted.
CREATE INDEX versions_live ON versions (collection_id, idx) WHERE state = 'COMMITTED';
-- idx included so "the lowest live version with this digest" is one step.
CREATE INDEX versions_by_digest ON versions (collection_id, digest, idx)
    WHERE state = 'COMMITTED';
CREATE INDEX versions_expiring ON versions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX versions_by_run ON versions (run_id);

-- The primary key makes an alias name exactly one version; moving it is one upsert.
CREATE TABLE aliases (
    collection_id bigint NOT NULL REFERENCES collections (id),
    alias text COLLATE "C" NOT NULL,
    version_id text COLLATE "C" NOT NULL REFERENCES versions (id),
    PRIMARY KEY (collection_id, alias)
);
CREATE INDEX aliases_by_version ON aliases (version_id);

CREATE TABLE tags (
    version_id text COLLATE "C" NOT NULL REFERENCES versions (id),
    tag text COLLATE "C" NOT NULL,
    PRIMARY KEY (version_id, tag)
);

-- direction: 'produced' (the run logged the version) or 'used' (it consumed it). The
-- identity column orders edges as they were recorded.
CREATE TABLE lineage (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES runs (id),
    version_id text COLLATE "C" NOT NULL REFERENCES versions (id),
    direction text NOT NULL CHECK (direction IN ('produced', 'used')),
    created_at double precision NOT NULL,
    CONSTRAINT lineage_by_run UNIQUE (run_id, direction, version_id)
);
CREATE INDEX lineage_by_version ON lineage (version_id, direction, id);

-- The idempotency key: the submission each commit came from, so committing it again
-- (a retry after a lost answer, a daemon crash before the spool's final rename)
-- returns the first answer.
CREATE TABLE submissions (
    submission_id text COLLATE "C" PRIMARY KEY,
    version_id text COLLATE "C" NOT NULL REFERENCES versions (id),
    created boolean NOT NULL,
    committed_at double precision NOT NULL
);

-- Parts of distributed versions. version_id stays NULL while the part is pending and
-- names the version that consumed it afterwards; the row is kept so that adding the
-- same submission again stays a no-op.
CREATE TABLE parts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id text COLLATE "C" NOT NULL,
    collection_id bigint NOT NULL REFERENCES collections (id),
    distributed_id text COLLATE "C" NOT NULL CHECK (distributed_id <> ''),
    manifest_key text NOT NULL,
    run_id bigint REFERENCES runs (id),
    size bigint NOT NULL,
    file_count bigint NOT NULL,
    created_at double precision NOT NULL,
    version_id text COLLATE "C" REFERENCES versions (id),
    CONSTRAINT parts_by_submission UNIQUE (submission_id)
);
CREATE INDEX parts_pending ON parts (collection_id, distributed_id, id)
    WHERE version_id IS NULL;
