-- Exit-code policies: JSON arrays of exit codes, NULL when unset.
ALTER TABLE jobs ADD COLUMN retry_on_exit text;
ALTER TABLE jobs ADD COLUMN fatal_on_exit text;
ALTER TABLE jobs ADD COLUMN dedupe_key text;

-- How each attempt ended: ok, failed, timeout, killed, lost, spawn-error (NULL while it
-- runs), and the name of the signal that ended a killed one.
ALTER TABLE attempts ADD COLUMN outcome text;
ALTER TABLE attempts ADD COLUMN signal text;

-- Attempts recorded before outcomes existed, classified from what they kept.
UPDATE attempts SET outcome = CASE
        WHEN error IS NULL THEN 'ok'
        WHEN error LIKE 'timed out%' THEN 'timeout'
        WHEN error LIKE 'could not start%' THEN 'spawn-error'
        WHEN error LIKE 'lost:%' THEN 'lost'
        WHEN exit_code IS NOT NULL THEN 'failed'
        ELSE 'killed'
    END
    WHERE finished_at IS NOT NULL;

-- At most one job per dedupe key among those not yet finished; enforced here so that it
-- holds however many processes enqueue at once.
CREATE UNIQUE INDEX jobs_dedupe_key ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'failed', 'processing');
