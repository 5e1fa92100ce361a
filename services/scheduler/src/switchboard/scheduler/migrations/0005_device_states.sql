-- The latest each device said about itself (its MQTT status, or the state in a command
-- result): device.query intents are answered from it. changed_at: when the readings or the
-- reachability last changed ("on since 21:04"); observed_at: when it was last heard.
CREATE TABLE device_states (
    device_id   text PRIMARY KEY,
    state       jsonb NOT NULL DEFAULT '{}'::jsonb,
    online      boolean,
    observed_at timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
