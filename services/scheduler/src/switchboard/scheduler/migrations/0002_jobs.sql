-- Jobs: what the scheduler must do at a time (reminders now; device commands, workflow
-- steps and plugin calls share the table and its dispatcher).

CREATE TABLE jobs (
    id                uuid PRIMARY KEY,
    kind              text NOT NULL,
    -- Whose it is: the person (identity links included), for "list / cancel my reminders".
    owner             text NOT NULL,
    tenant_id         text NOT NULL,
    conversation_key  text NOT NULL,
    -- Where its messages go.
    channel           smallint NOT NULL,
    channel_chat_id   text NOT NULL,
    language          text NOT NULL DEFAULT 'en',
    -- The inbound message that asked for it: one job per message, however often the
    -- intent is delivered (NULL for jobs made by configuration or by other jobs).
    source_message_id text UNIQUE,
    title             text NOT NULL,
    payload           jsonb NOT NULL DEFAULT '{}',
    priority          smallint NOT NULL DEFAULT 2 CHECK (priority IN (1, 2)),  -- 1 urgent, 2 routine
    -- A recurrence (RRULE or cron, in time_zone, from dtstart) or neither: fires once.
    time_zone         text NOT NULL,
    dtstart           timestamptz NOT NULL,
    rrule             text,
    cron              text,
    -- The occurrence being worked on, and when to try it (later than occurrence after a
    -- failed attempt: backoff).
    occurrence        timestamptz NOT NULL,
    due_at            timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('scheduled', 'done', 'failed', 'cancelled')),
    attempts          integer NOT NULL DEFAULT 0,  -- failed attempts at this occurrence
    max_attempts      integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    last_error        text,
    fired             integer NOT NULL DEFAULT 0,  -- occurrences done
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (rrule IS NULL OR cron IS NULL)
);
-- The dispatcher's claim: urgent first, then routine, each in due order.
CREATE INDEX jobs_due ON jobs (priority, due_at) WHERE status = 'scheduled';
-- "list my reminders", "cancel the 5 pm one".
CREATE INDEX jobs_owner ON jobs (owner, kind, occurrence) WHERE status = 'scheduled';

-- Intents handled without an inference request (reminder list / cancel...), so one that
-- is delivered again is answered once.
CREATE TABLE handled_messages (
    message_id  text PRIMARY KEY,
    intent      text NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
