-- Where the reply to an accepted Feishu message goes: the message it answers (replies are
-- threaded under it) and whether to open a thread (groups) or quote it (one-to-one chats).
-- Any replica may send the reply, possibly after a restart, so it is kept here.
CREATE TABLE feishu_reply_targets (
    message_id          text PRIMARY KEY,
    feishu_message_id   text NOT NULL,
    in_thread           boolean NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feishu_reply_targets_age ON feishu_reply_targets (created_at);
