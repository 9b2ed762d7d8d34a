-- Job dependencies: a job is claimable only once every job it depends on has completed.
-- depends_on: a JSON array of job ids, as the user gave them, or NULL for none.
ALTER TABLE jobs ADD COLUMN depends_on text;
-- waiting_on: how many of those are not completed yet; the finish of a dependency lowers it.
-- Only jobs at 0 enter the claimable index, so waiting jobs cost a claim nothing.
ALTER TABLE jobs ADD COLUMN waiting_on integer NOT NULL DEFAULT 0;
-- has_dependents: set (under the row's lock) when a job that waits for this one is added,
-- so that the finish, which locks the same row, learns of a dependent added while it ran.
ALTER TABLE jobs ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;
DROP INDEX jobs_claimable;
CREATE INDEX jobs_claimable ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0;

-- One row per edge; the primary key answers "what does J wait for", the index "who waits
-- for J" (the finish of J releases or kills those).
CREATE TABLE job_dependencies (
    job_id        text NOT NULL,
    depends_on_id text NOT NULL,
    PRIMARY KEY (job_id, depends_on_id)
);
CREATE INDEX job_dependencies_dependents ON job_dependencies (depends_on_id);
