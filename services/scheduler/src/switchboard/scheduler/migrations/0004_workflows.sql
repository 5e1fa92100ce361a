-- Workflow runs are jobs (kind 'workflow'); a model step waits for its InferenceResult,
-- found by the request id it sent.
CREATE INDEX jobs_pending_request ON jobs ((payload ->> 'pending_request')) WHERE status = 'waiting';

-- Where the ticket-classification workflow files tickets.
CREATE TABLE tickets (
    id             bigserial PRIMARY KEY,
    owner          text NOT NULL,
    text           text NOT NULL,
    category       text NOT NULL,
    -- "model", or "keywords" when the model's answer named no single category.
    classified_by  text NOT NULL,
    status         text NOT NULL DEFAULT 'open',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_owner ON tickets (owner, created_at);
