-- Client groups deleted for idleness are remembered for a while (one more
-- client group TTL), so that a returning client's pull is told
-- ClientStateNotFound rather than served as a new group: the real client
-- gives a new client group the cookie of the one it replaces, so an unknown
-- group with an old cookie is not by itself a deleted one.
CREATE TABLE client_groups_deleted (
    canvas_id  text        NOT NULL,
    id         text        NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (canvas_id, id)
);
CREATE INDEX client_groups_deleted_at ON client_groups_deleted (deleted_at);
