-- Data lifecycle: idle client groups and old tombstones are deleted in the
-- background, in small batches.

-- When a client group last pushed or pulled (written at most every few
-- hours per group); groups idle past the TTL are deleted with their clients.
ALTER TABLE client_groups ADD COLUMN last_active_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX client_groups_last_active ON client_groups (last_active_at);

-- When a node or edge was deleted; tombstones older than the TTL are purged.
-- Existing tombstones count from this migration.
ALTER TABLE nodes ADD COLUMN deleted_at timestamptz;
ALTER TABLE edges ADD COLUMN deleted_at timestamptz;
UPDATE nodes SET deleted_at = now() WHERE deleted;
UPDATE edges SET deleted_at = now() WHERE deleted;
CREATE INDEX nodes_tombstones ON nodes (deleted_at) WHERE deleted;
CREATE INDEX edges_tombstones ON edges (deleted_at) WHERE deleted;

-- tombstone_horizon: the newest version of a purged tombstone; a cookie
-- older than it would miss a delete, so its pull gets a reset patch.
-- groups_purged_version: the version at which client groups were last
-- deleted; a cookie older than it from a group the server does not know
-- is a returning client of a deleted group (ClientStateNotFound).
ALTER TABLE canvases ADD COLUMN tombstone_horizon bigint NOT NULL DEFAULT 0;
ALTER TABLE canvases ADD COLUMN groups_purged_version bigint NOT NULL DEFAULT 0;
