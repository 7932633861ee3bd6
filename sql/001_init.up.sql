-- Every table is keyed by canvas_id first, so a distributed Postgres can shard
-- by canvas with co-located joins.

CREATE TABLE canvases (
    id            text        PRIMARY KEY,
    epoch         text        NOT NULL,
    title         text        NOT NULL DEFAULT '',
    -- version of the last write of this canvas; cookies carry it as "order".
    version       bigint      NOT NULL DEFAULT 0,
    -- version at which the title last changed, for incremental pulls.
    title_version bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nodes (
    canvas_id text             NOT NULL REFERENCES canvases (id) ON DELETE CASCADE,
    id        text             NOT NULL,
    kind      text             NOT NULL,
    x         double precision NOT NULL,
    y         double precision NOT NULL,
    w         double precision NOT NULL,
    h         double precision NOT NULL,
    title     text             NOT NULL DEFAULT '',
    body      text             NOT NULL DEFAULT '',
    version   bigint           NOT NULL,
    deleted   boolean          NOT NULL DEFAULT false,
    PRIMARY KEY (canvas_id, id)
);
CREATE INDEX nodes_canvas_version ON nodes (canvas_id, version);

CREATE TABLE edges (
    canvas_id text    NOT NULL REFERENCES canvases (id) ON DELETE CASCADE,
    id        text    NOT NULL,
    from_node text    NOT NULL,
    to_node   text    NOT NULL,
    version   bigint  NOT NULL,
    deleted   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (canvas_id, id)
);
CREATE INDEX edges_canvas_version ON edges (canvas_id, version);

CREATE TABLE client_groups (
    canvas_id  text        NOT NULL REFERENCES canvases (id) ON DELETE CASCADE,
    id         text        NOT NULL,
    user_id    text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (canvas_id, id)
);
-- A client group is bound to the canvas of its first push; this index finds
-- a group used on another canvas.
CREATE INDEX client_groups_id ON client_groups (id);

CREATE TABLE clients (
    canvas_id        text        NOT NULL,
    id               text        NOT NULL,
    client_group_id  text        NOT NULL,
    last_mutation_id bigint      NOT NULL DEFAULT 0,
    version          bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (canvas_id, id),
    FOREIGN KEY (canvas_id, client_group_id) REFERENCES client_groups (canvas_id, id) ON DELETE CASCADE
);
CREATE INDEX clients_group_version ON clients (canvas_id, client_group_id, version);

-- The single version row of the global-versioning baseline.
CREATE TABLE global_version (
    id      int    PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO global_version (id, version) VALUES (1, 0);
