package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// gcLock names the advisory lock that keeps the lifecycle collector on one
// instance at a time: advisory locks are per database, so the schema is
// part of the name ("canv" and the schema's hash).
const gcLock = `x'63616e76'::int4, hashtext(current_schema())`

// GroupKey names a client group of a canvas.
type GroupKey struct {
	Canvas, Group string
}

// TouchGroups records that the given client groups were just used, so
// that they are not deleted as idle. Groups that do not exist are ignored.
func (s *Store) TouchGroups(ctx context.Context, keys []GroupKey) error {
	canvases, groups := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		canvases[i], groups[i] = k.Canvas, k.Group
	}
	_, err := s.pool.Exec(ctx, `UPDATE client_groups g SET last_active_at = now()
		FROM unnest($1::text[], $2::text[]) AS u(canvas_id, id)
		WHERE g.canvas_id = u.canvas_id AND g.id = u.id`, canvases, groups)
	if err != nil {
		return fmt.Errorf("touch %d client groups: %w", len(keys), err)
	}
	return nil
}

// WithGCLock runs fn if this session gets the collector's advisory lock,
// and reports whether it did: another instance holding it means fn does
// not run. fn uses the pool, not the connection that holds the lock.
func (s *Store) WithGCLock(ctx context.Context, fn func(ctx context.Context) error) (bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("gc lock: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+gcLock+`)`).Scan(&got); err != nil {
		return false, fmt.Errorf("gc lock: %w", err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(`+gcLock+`)`); err != nil {
			// The session may still hold the lock: never reuse it.
			_ = conn.Conn().Close(ctx)
		}
	}()
	return true, fn(ctx)
}

// lockCanvases locks the rows of the given canvases that no other session
// holds, and returns their ids: the collector never waits for a writer.
func lockCanvases(ctx context.Context, tx pgx.Tx, ids []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM canvases WHERE id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED`, ids)
	if err != nil {
		return nil, err
	}
	locked := make(map[string]bool, len(ids))
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		locked[id] = true
		return nil
	})
	return locked, err
}

// DeleteIdleGroups deletes, in one short transaction, up to limit client
// groups (with their clients) neither used nor written since cutoff. Each
// canvas that lost groups moves to a new version, recorded as its
// groups_purged_version: every instance's memory of it is then stale and
// reloaded, and a later pull from an unknown group with an older cookie is
// a returning client of a deleted group. Canvases whose row a writer holds
// are skipped. It returns how many idle groups it found and deleted.
func (s *Store) DeleteIdleGroups(ctx context.Context, cutoff time.Time, limit int) (found, deleted int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("delete idle groups: %w", err)
	}
	defer rollback(ctx, tx)
	const idle = `g.last_active_at < $1 AND NOT EXISTS (SELECT 1 FROM clients cl
		WHERE cl.canvas_id = g.canvas_id AND cl.client_group_id = g.id AND cl.updated_at >= $1)`
	rows, err := tx.Query(ctx, `SELECT g.canvas_id, g.id FROM client_groups g JOIN canvases c ON c.id = g.canvas_id
		WHERE `+idle+` ORDER BY g.last_active_at LIMIT $2`, cutoff, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("find idle groups: %w", err)
	}
	var canvasIDs, groupIDs []string
	var cv, g string
	if _, err := pgx.ForEachRow(rows, []any{&cv, &g}, func() error {
		canvasIDs, groupIDs = append(canvasIDs, cv), append(groupIDs, g)
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("find idle groups: %w", err)
	}
	if len(groupIDs) == 0 {
		return 0, 0, nil
	}
	locked, err := lockCanvases(ctx, tx, canvasIDs)
	if err != nil {
		return 0, 0, fmt.Errorf("lock canvases: %w", err)
	}
	var delCanvases, delGroups []string
	for i := range groupIDs {
		if locked[canvasIDs[i]] {
			delCanvases, delGroups = append(delCanvases, canvasIDs[i]), append(delGroups, groupIDs[i])
		}
	}
	if len(delGroups) == 0 {
		return len(groupIDs), 0, nil
	}
	// Checked again: a group used since the search is kept.
	rows, err = tx.Query(ctx, `DELETE FROM client_groups g USING unnest($2::text[], $3::text[]) AS u(canvas_id, id)
		WHERE g.canvas_id = u.canvas_id AND g.id = u.id AND `+idle+` RETURNING g.canvas_id, g.id`, cutoff, delCanvases, delGroups)
	if err != nil {
		return 0, 0, fmt.Errorf("delete idle groups: %w", err)
	}
	touched := make(map[string]bool)
	var goneCanvases, goneGroups []string
	if _, err := pgx.ForEachRow(rows, []any{&cv, &g}, func() error {
		deleted++
		touched[cv] = true
		goneCanvases, goneGroups = append(goneCanvases, cv), append(goneGroups, g)
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("delete idle groups: %w", err)
	}
	if deleted > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO client_groups_deleted (canvas_id, id)
			SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (canvas_id, id) DO UPDATE SET deleted_at = now()`,
			goneCanvases, goneGroups); err != nil {
			return 0, 0, fmt.Errorf("record deleted groups: %w", err)
		}
		ids := make([]string, 0, len(touched))
		for id := range touched {
			ids = append(ids, id)
		}
		// Clients are deleted with their group (ON DELETE CASCADE).
		if _, err := tx.Exec(ctx, `UPDATE canvases SET version = version + 1, groups_purged_version = version + 1
			WHERE id = ANY($1)`, ids); err != nil {
			return 0, 0, fmt.Errorf("bump canvases: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("delete idle groups: %w", err)
	}
	return len(groupIDs), deleted, nil
}

// PurgeTombstones deletes, in one short transaction, up to limit deleted
// nodes and as many deleted edges that were deleted before cutoff, and
// raises each canvas's tombstone horizon to the newest version purged
// (pulls from an older cookie then get a reset patch). Canvases whose row a
// writer holds are skipped. It returns how many tombstones it found and
// deleted.
func (s *Store) PurgeTombstones(ctx context.Context, cutoff time.Time, limit int) (found, deleted int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("purge tombstones: %w", err)
	}
	defer rollback(ctx, tx)
	// The canvases with old tombstones first: their rows are locked before
	// the tombstones, in the order writers lock them.
	rows, err := tx.Query(ctx, `SELECT DISTINCT canvas_id FROM (
			(SELECT canvas_id FROM nodes WHERE deleted AND deleted_at < $1 ORDER BY deleted_at LIMIT $2)
			UNION ALL
			(SELECT canvas_id FROM edges WHERE deleted AND deleted_at < $1 ORDER BY deleted_at LIMIT $2)) t
		WHERE EXISTS (SELECT 1 FROM canvases c WHERE c.id = t.canvas_id)`, cutoff, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("find tombstones: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, fmt.Errorf("find tombstones: %w", err)
	}
	if len(ids) == 0 {
		return 0, 0, nil
	}
	locked, err := lockCanvases(ctx, tx, ids)
	if err != nil {
		return 0, 0, fmt.Errorf("lock canvases: %w", err)
	}
	lockedIDs := make([]string, 0, len(locked))
	for id := range locked {
		lockedIDs = append(lockedIDs, id)
	}
	if len(lockedIDs) == 0 {
		return len(ids), 0, nil
	}
	horizon := make(map[string]int64)
	for _, table := range []string{"nodes", "edges"} {
		rows, err := tx.Query(ctx, `DELETE FROM `+table+` t WHERE (t.canvas_id, t.id) IN (
				SELECT canvas_id, id FROM `+table+` WHERE canvas_id = ANY($1) AND deleted AND deleted_at < $2
				ORDER BY deleted_at LIMIT $3)
			RETURNING t.canvas_id, t.version`, lockedIDs, cutoff, limit)
		if err != nil {
			return 0, 0, fmt.Errorf("purge %s: %w", table, err)
		}
		var cv string
		var v int64
		if _, err := pgx.ForEachRow(rows, []any{&cv, &v}, func() error {
			deleted++
			horizon[cv] = max(horizon[cv], v)
			return nil
		}); err != nil {
			return 0, 0, fmt.Errorf("purge %s: %w", table, err)
		}
	}
	if len(horizon) > 0 {
		hc, hv := make([]string, 0, len(horizon)), make([]int64, 0, len(horizon))
		for id, v := range horizon {
			hc, hv = append(hc, id), append(hv, v)
		}
		if _, err := tx.Exec(ctx, `UPDATE canvases c SET tombstone_horizon = greatest(c.tombstone_horizon, u.v)
			FROM unnest($1::text[], $2::int8[]) AS u(id, v) WHERE c.id = u.id`, hc, hv); err != nil {
			return 0, 0, fmt.Errorf("raise tombstone horizons: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("purge tombstones: %w", err)
	}
	return max(len(ids), deleted), deleted, nil
}

// GroupDeleted reports whether client group groupID of canvasID was
// deleted for idleness (and is still remembered as such).
func (s *Store) GroupDeleted(ctx context.Context, canvasID, groupID string) (bool, error) {
	var deleted bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM client_groups_deleted WHERE canvas_id = $1 AND id = $2)`,
		canvasID, groupID).Scan(&deleted)
	if err != nil {
		return false, fmt.Errorf("group %s deleted: %w", groupID, err)
	}
	return deleted, nil
}

// ForgetDeletedGroups forgets up to limit groups deleted before cutoff:
// their returning clients are then served as new groups on pull (a push
// still gets ClientStateNotFound). It returns how many it forgot.
func (s *Store) ForgetDeletedGroups(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM client_groups_deleted WHERE (canvas_id, id) IN (
		SELECT canvas_id, id FROM client_groups_deleted WHERE deleted_at < $1 ORDER BY deleted_at LIMIT $2)`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("forget deleted groups: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
