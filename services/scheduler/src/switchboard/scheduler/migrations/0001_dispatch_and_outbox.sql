-- What the scheduler dispatched, and the transactional outbox that relays it to Kafka.

CREATE TABLE dispatches (
    request_id        uuid PRIMARY KEY,
    -- One chat turn per inbound message: an intent parsed twice (at-least-once upstream,
    -- so with a new event id) finds the row and dispatches nothing.
    message_id        text NOT NULL UNIQUE,
    intent_event_id   text NOT NULL,
    conversation_key  text NOT NULL,
    tenant_id         text NOT NULL,
    channel           smallint NOT NULL,
    channel_chat_id   text NOT NULL,
    priority          smallint NOT NULL,
    model_profile     text NOT NULL,
    status            text NOT NULL DEFAULT 'dispatched' CHECK (status IN ('dispatched', 'completed', 'failed')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    model_name        text,
    latency_ms        integer
);
CREATE INDEX dispatches_open ON dispatches (created_at) WHERE status = 'dispatched';

-- Rows are written in the same transaction as the state change they announce and
-- deleted once Kafka acknowledged them, so a crash can neither lose nor invent an event.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    key         bytea NOT NULL,
    value       bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now()
);
