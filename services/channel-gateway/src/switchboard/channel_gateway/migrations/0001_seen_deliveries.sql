-- Platform deliveries already accepted (Telegram update ids, Feishu event ids): the
-- platforms retry for hours, across our restarts, and any replica may get the retry.
CREATE TABLE seen_deliveries (
    channel  text NOT NULL,
    key      text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, key)
);
-- Rows older than the longest retry window are purged.
CREATE INDEX seen_deliveries_age ON seen_deliveries (seen_at);
