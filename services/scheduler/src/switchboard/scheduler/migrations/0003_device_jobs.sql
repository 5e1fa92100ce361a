-- Device jobs wait for the device's answer: 'waiting' until its result comes, or until
-- due_at (the answer's deadline) passes and the dispatcher counts a failed attempt.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('scheduled', 'waiting', 'done', 'failed', 'cancelled'));
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (priority, due_at) WHERE status IN ('scheduled', 'waiting');
