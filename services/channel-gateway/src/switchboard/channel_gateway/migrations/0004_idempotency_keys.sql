-- Idempotency-Key of POST /v1/messages, per caller: a retried request gets the first one's
-- message (and reply) instead of sending the message twice. Kept 24 hours.
CREATE TABLE idempotency_keys (
    subject          text NOT NULL,
    key              text NOT NULL,
    request_hash     text NOT NULL,
    message_id       text NOT NULL,
    conversation_id  text NOT NULL,
    published        boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
