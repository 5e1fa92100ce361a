-- Messages per user per minute, counted in one place so the limit holds across replicas.
CREATE TABLE rate_windows (
    subject       text NOT NULL,
    window_start  timestamptz NOT NULL,
    count         integer NOT NULL,
    PRIMARY KEY (subject, window_start)
);
