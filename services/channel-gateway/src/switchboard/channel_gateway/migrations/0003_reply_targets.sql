-- Where the reply to an accepted message goes, for channels where that is more than a
-- chat id: the Feishu message to thread under, the MQTT 5 response topic and correlation
-- data. Any replica may send the reply, possibly after a restart, so it is kept here.
CREATE TABLE reply_targets (
    message_id  text PRIMARY KEY,
    channel     text NOT NULL,
    target      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reply_targets_age ON reply_targets (created_at);
