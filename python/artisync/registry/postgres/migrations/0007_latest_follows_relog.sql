-- `latest` follows the version logged last (W&B's rule): content logged again that is
-- an older version's moves `latest` to that version, as W&B's server does with the
-- `latest` alias its client sends with every log (docs/decisions.md, "Same content
-- logged again"). The move is an `aliases` row named 'latest', kept only while it names
-- another version than the highest live one; without the row `latest` is the highest,
-- as before, so no existing row changes. postgres/queries.latest_version_id reads it;
-- deleting the version it names deletes the row, which hands `latest` to the highest.
--
-- The commit function below is 0003's with that one step added after the aliases move,
-- and its answer's aliases read `latest` the same way.

CREATE OR REPLACE FUNCTION artisync_commit_versions(batch jsonb)
RETURNS TABLE (
    o_ordinal integer,
    o_outcome text,
    o_detail text,
    o_created boolean,
    o_id text,
    o_project text,
    o_entity text,
    o_name text,
    o_type text,
    o_idx integer,
    o_digest text,
    o_manifest_key text,
    o_size bigint,
    o_file_count bigint,
    o_description text,
    o_metadata json,
    o_created_at double precision,
    o_run_id text,
    o_ttl_seconds double precision,
    o_state text,
    o_collection bigint,
    o_store text,
    o_aliases text[],
    o_tags text[]
)
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    item record;
    project_key bigint;
    collection_key bigint;
    collection_type text;
    run_key bigint;
    version_key text;
    stamp double precision;
    clash text;
    run_is_new boolean;
    new_runs bigint[] := '{}';
    used_runs bigint[] := '{}';
    lock_key integer;
BEGIN
    -- Each submission's advisory lock first (the key postgres/commit.py's parts take
    -- too), in one order: a retry of a submission, whatever collection it names,
    -- waits for the first attempt's transaction and then finds its answer.
    FOR lock_key IN
        SELECT DISTINCT hashtext(e.value ->> 'submission_id') AS h
        FROM jsonb_array_elements(batch) AS e (value) ORDER BY h
    LOOP
        PERFORM pg_advisory_xact_lock(1634890867, lock_key);
    END LOOP;

    -- The runs of the batch's new submissions, each created or its row locked (its
    -- updated_at moves: a run's record changes when it logs a version), by key.
    FOR item IN
        SELECT DISTINCT x.entity, x.project, x.run_id
        FROM jsonb_to_recordset(batch) AS x (submission_id text, entity text, project text,
                                             run_id text)
        WHERE NOT EXISTS (SELECT 1 FROM submissions AS s
                          WHERE s.submission_id = x.submission_id)
        ORDER BY x.entity, x.project, x.run_id
    LOOP
        project_key := artisync_project(item.entity, item.project);
        CONTINUE WHEN item.run_id IS NULL;
        stamp := extract(epoch FROM clock_timestamp());
        INSERT INTO runs AS r (project_id, run_id, config, created_at, updated_at)
        VALUES (project_key, item.run_id, '{}', stamp, stamp)
        ON CONFLICT (project_id, run_id)
        DO UPDATE SET updated_at = greatest(r.updated_at, excluded.updated_at)
        RETURNING r.id, r.xmax = 0 INTO run_key, run_is_new;
        IF run_is_new THEN
            new_runs := new_runs || run_key;
        END IF;
    END LOOP;

    FOR item IN
        SELECT e.ordinality::integer AS ordinal, x.*
        FROM jsonb_array_elements(batch) WITH ORDINALITY AS e (value, ordinality),
             jsonb_to_record(e.value) AS x (
                 submission_id text, entity text, project text, name text, type text,
                 digest text, manifest_key text, size bigint, file_count bigint,
                 description text, metadata text, run_id text, ttl_seconds double precision,
                 store text, distributed_id text, aliases text[], tags text[])
        ORDER BY e.ordinality
    LOOP
        o_ordinal := item.ordinal;
        o_outcome := NULL;
        o_detail := NULL;

        -- The idempotency key: a submission committed before gets its first answer,
        -- whatever it carries now (its lock is held: a retry running elsewhere has
        -- either committed, and is seen here, or waits for this transaction).
        SELECT s.version_id, s.created INTO version_key, o_created FROM submissions AS s
        WHERE s.submission_id = item.submission_id;
        IF version_key IS NULL THEN
            project_key := artisync_project(item.entity, item.project);

            -- The collection's row lock: every write to its versions, aliases and parts
            -- takes it, so version numbers follow commit order with no gap.
            SELECT c.id, c.type INTO collection_key, collection_type FROM collections AS c
            WHERE c.project_id = project_key AND c.name = item.name FOR UPDATE;
            IF collection_key IS NULL THEN
                INSERT INTO collections (project_id, name, type, created_at)
                VALUES (project_key, item.name, item.type, extract(epoch FROM clock_timestamp()))
                ON CONFLICT (project_id, name) DO NOTHING;
                SELECT c.id, c.type INTO STRICT collection_key, collection_type
                FROM collections AS c
                WHERE c.project_id = project_key AND c.name = item.name FOR UPDATE;
            END IF;
            -- Stamped once the lock is held: a commit that waited is stamped after the one
            -- it waited for, so creation times follow version numbers.
            stamp := extract(epoch FROM clock_timestamp());
        END IF;

        IF version_key IS NOT NULL THEN
            o_outcome := 'existing';
        ELSIF collection_type <> item.type THEN
            o_outcome := 'type_conflict';
            o_detail := collection_type;
        ELSE
            clash := NULL;
            IF item.distributed_id IS NOT NULL AND item.store IS NOT NULL THEN
                SELECT json_agg(json_build_array(pt.submission_id, pt.store) ORDER BY pt.id)::text
                INTO clash FROM parts AS pt
                WHERE pt.collection_id = collection_key
                  AND pt.distributed_id = item.distributed_id AND pt.version_id IS NULL
                HAVING bool_or(pt.store IS NOT NULL AND pt.store <> item.store);
            END IF;
            IF clash IS NOT NULL THEN
                o_outcome := 'mixed_stores';
                o_detail := clash;
            END IF;
        END IF;

        IF o_outcome IN ('type_conflict', 'mixed_stores') AND version_key IS NULL THEN
            o_created := NULL;
            o_id := NULL; o_project := NULL; o_entity := NULL; o_name := NULL;
            o_type := NULL; o_idx := NULL; o_digest := NULL; o_manifest_key := NULL;
            o_size := NULL; o_file_count := NULL; o_description := NULL;
            o_metadata := NULL; o_created_at := NULL; o_run_id := NULL;
            o_ttl_seconds := NULL; o_state := NULL; o_collection := NULL; o_store := NULL;
            o_aliases := NULL; o_tags := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;

        IF version_key IS NULL THEN
            run_key := NULL;
            IF item.run_id IS NOT NULL THEN  -- created or locked above
                SELECT r.id INTO STRICT run_key FROM runs AS r
                WHERE r.project_id = project_key AND r.run_id = item.run_id;
                used_runs := used_runs || run_key;
            END IF;

            -- Same content in the same store, live: that version again. Deleted
            -- versions are not in versions_by_digest, so content logged after a delete
            -- is a new version.
            SELECT v.id INTO version_key FROM versions AS v
            WHERE v.collection_id = collection_key AND v.digest = item.digest
              AND v.state = 'COMMITTED' AND v.store IS NOT DISTINCT FROM item.store
            ORDER BY v.idx LIMIT 1;
            o_created := version_key IS NULL;
            IF o_created THEN
                version_key := replace(gen_random_uuid()::text, '-', '');
                INSERT INTO versions (id, collection_id, idx, digest, manifest_key, size,
                    file_count, description, metadata, created_at, run_id, ttl_seconds,
                    state, expires_at, store)
                VALUES (version_key, collection_key,
                    (SELECT coalesce(max(v.idx) + 1, 0) FROM versions AS v
                     WHERE v.collection_id = collection_key),
                    item.digest, item.manifest_key, item.size, item.file_count,
                    item.description, item.metadata::json, stamp, run_key,
                    item.ttl_seconds, 'COMMITTED', stamp + item.ttl_seconds, item.store);
            END IF;

            INSERT INTO tags (version_id, tag)
            SELECT DISTINCT version_key, t FROM unnest(item.tags) AS t
            ON CONFLICT DO NOTHING;
            INSERT INTO aliases (collection_id, alias, version_id)
            SELECT collection_key, a, version_key FROM unnest(item.aliases) AS a
            ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = excluded.version_id;
            -- `latest` names the version just logged: a row only when that is not the
            -- highest live version (content logged again was an older version's).
            IF version_key = (SELECT l.id FROM versions AS l
                              WHERE l.collection_id = collection_key AND l.state = 'COMMITTED'
                              ORDER BY l.idx DESC LIMIT 1) THEN
                DELETE FROM aliases AS a
                WHERE a.collection_id = collection_key AND a.alias = 'latest';
            ELSE
                INSERT INTO aliases (collection_id, alias, version_id)
                VALUES (collection_key, 'latest', version_key)
                ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = excluded.version_id;
            END IF;

            -- Part writers first, in the order they added their parts: they wrote
            -- before the run that finished the version.
            IF item.distributed_id IS NOT NULL THEN
                WITH consumed AS (
                    UPDATE parts AS pt SET version_id = version_key
                    WHERE pt.collection_id = collection_key
                      AND pt.distributed_id = item.distributed_id AND pt.version_id IS NULL
                    RETURNING pt.id, pt.run_id
                )
                INSERT INTO lineage (run_id, version_id, direction, created_at)
                SELECT consumed.run_id, version_key, 'produced', stamp FROM consumed
                WHERE consumed.run_id IS NOT NULL ORDER BY consumed.id
                ON CONFLICT (run_id, direction, version_id) DO NOTHING;
            END IF;
            IF run_key IS NOT NULL THEN
                INSERT INTO lineage (run_id, version_id, direction, created_at)
                VALUES (run_key, version_key, 'produced', stamp)
                ON CONFLICT (run_id, direction, version_id) DO NOTHING;
            END IF;

            INSERT INTO submissions (submission_id, version_id, created, committed_at)
            VALUES (item.submission_id, version_key, o_created, stamp);
            o_outcome := CASE WHEN o_created THEN 'committed' ELSE 'existing' END;
        END IF;

        SELECT v.id, p.name, p.entity, c.name, c.type, v.idx, v.digest, v.manifest_key,
               v.size, v.file_count, v.description, v.metadata, v.created_at, r.run_id,
               v.ttl_seconds, v.state, v.collection_id, v.store,
               ARRAY(SELECT a.alias FROM aliases AS a
                     WHERE a.version_id = v.id AND a.alias <> 'latest'
                     UNION ALL SELECT 'latest' WHERE v.id = coalesce(
                         (SELECT m.version_id FROM aliases AS m
                          WHERE m.collection_id = v.collection_id AND m.alias = 'latest'),
                         (SELECT l.id FROM versions AS l
                          WHERE l.collection_id = v.collection_id AND l.state = 'COMMITTED'
                          ORDER BY l.idx DESC LIMIT 1))),
               ARRAY(SELECT t.tag FROM tags AS t WHERE t.version_id = v.id)
        INTO STRICT o_id, o_project, o_entity, o_name, o_type, o_idx, o_digest,
             o_manifest_key, o_size, o_file_count, o_description, o_metadata,
             o_created_at, o_run_id, o_ttl_seconds, o_state, o_collection, o_store,
             o_aliases, o_tags
        FROM versions AS v
        JOIN collections AS c ON c.id = v.collection_id
        JOIN projects AS p ON p.id = c.project_id
        LEFT JOIN runs AS r ON r.id = v.run_id
        WHERE v.id = version_key;
        RETURN NEXT;
    END LOOP;

    -- A run created for commits that were all refused goes again: a refused commit
    -- leaves nothing behind.
    DELETE FROM runs AS r WHERE r.id = ANY (new_runs) AND r.id <> ALL (used_runs);
END;
$$;
