-- Runs keep W&B's tags, notes and sweep, and their history rows (run.log); sweeps are
-- stored. sqlite/schema.py's version 4 adds the same. A run's sweep is the sweep's id,
-- not a key: a run may name a sweep this registry never saw, as W&B allows.
--
-- History holds one row per (run, step): writing a step again replaces its row, so a
-- retried or resumed write never duplicates one. Reads walk the primary key in step
-- order.

ALTER TABLE runs
    ADD COLUMN tags json NOT NULL DEFAULT '[]',
    ADD COLUMN notes text,
    ADD COLUMN sweep_id text COLLATE "C";

CREATE TABLE history (
    run_id bigint NOT NULL REFERENCES runs (id),
    step bigint NOT NULL CHECK (step >= 0),
    data json NOT NULL,
    PRIMARY KEY (run_id, step)
);

CREATE TABLE sweeps (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    sweep_id text COLLATE "C" NOT NULL,
    config json NOT NULL,
    state text NOT NULL,
    created_at double precision NOT NULL,
    CONSTRAINT sweeps_by_project UNIQUE (project_id, sweep_id)
);
