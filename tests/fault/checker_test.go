package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// violation is one broken invariant found by the checker.
type violation struct {
	Kind   string // one of the kind* constants
	Detail string
}

func (v violation) String() string { return v.Kind + ": " + v.Detail }

const (
	kindLost          = "acknowledged-mutation-lost"   // acked > stored lastMutationID
	kindLMIDRollback  = "last-mutation-id-rolled-back" // a lastMutationID write went down
	kindAppliedTwice  = "applied-twice"                // a mutation's unique value written twice
	kindReborn        = "row-reborn"                   // a deleted row came back
	kindVersionReuse  = "version-reused"               // two bumps to one version of a canvas
	kindVersionStep   = "version-not-plus-one"         // a bump that is not old+1 (rewind, jump)
	kindUnversioned   = "write-outside-a-version"      // a row written without its canvas's bump
	kindStaleClient   = "client-stale"                 // not equal to the database in time
	kindInstanceDiffs = "instance-pull-differs"        // a fresh pull differs from the database
	kindIsolation     = "canvas-isolation"             // a canvas slowed or failed by another's lock
	kindStuckPull     = "stuck-canvas-pull"            // a pull of a locked canvas slow or failed
	kindDrainErrors   = "errors-despite-drain"         // clients saw errors in a drained restart
)

// ackModel is what one client was told: every mutation up to acked is
// committed.
type ackModel struct {
	who, canvas, clientID string
	acked                 int64
}

// checkHistory runs the database-side detectors over the audit and the
// clients' acknowledgement models.
func checkHistory(ctx context.Context, db *pgxpool.Pool, models []ackModel) ([]violation, error) {
	var out []violation
	for _, m := range models {
		if m.acked == 0 {
			continue
		}
		var stored int64
		err := db.QueryRow(ctx, `SELECT coalesce(max(last_mutation_id), 0) FROM clients WHERE canvas_id = $1 AND id = $2`,
			m.canvas, m.clientID).Scan(&stored)
		if err != nil {
			return nil, fmt.Errorf("client %s: %w", m.who, err)
		}
		if stored < m.acked {
			out = append(out, violation{kindLost, fmt.Sprintf("%s (%s on %s) was acknowledged up to %d, the database has %d",
				m.who, m.clientID, m.canvas, m.acked, stored)})
		}
	}
	queries := []struct {
		kind, sql string
	}{
		{kindLMIDRollback, `SELECT format('client %s on %s: lastMutationID %s -> %s by %s (tx %s)', row_id, canvas_id, old_lmid, new_lmid, app, tx)
			FROM fault_audit WHERE tbl = 'clients' AND new_lmid < old_lmid ORDER BY id`},
		{kindAppliedTwice, `SELECT format('node %s on %s: title %L written %s times (by %s)', row_id, canvas_id, tag_title, count(*), string_agg(app, ','))
			FROM fault_audit WHERE tbl = 'nodes' AND tag_title IS NOT NULL AND tag_title <> ''
			GROUP BY canvas_id, row_id, tag_title HAVING count(*) > 1`},
		{kindAppliedTwice, `SELECT format('node %s on %s: x %s written %s times (by %s)', row_id, canvas_id, tag_x, count(*), string_agg(app, ','))
			FROM fault_audit WHERE tbl = 'nodes' AND tag_x IS NOT NULL
			GROUP BY canvas_id, row_id, tag_x HAVING count(*) > 1`},
		{kindReborn, `SELECT format('%s %s on %s came back at version %s (by %s)', tbl, row_id, canvas_id, new_version, app)
			FROM fault_audit WHERE reborn ORDER BY id`},
		{kindVersionReuse, `SELECT format('canvas %s: version %s given %s times (by %s)', canvas_id, new_version, count(*), string_agg(app, ','))
			FROM fault_audit WHERE tbl = 'canvases' AND op = 'UPDATE'
			GROUP BY canvas_id, new_version HAVING count(*) > 1`},
		{kindVersionStep, `SELECT format('canvas %s: version %s -> %s (by %s, tx %s)', canvas_id, old_version, new_version, app, tx)
			FROM fault_audit WHERE tbl = 'canvases' AND op = 'UPDATE' AND new_version <> old_version + 1 ORDER BY id`},
		{kindUnversioned, `SELECT format('%s %s on %s written at version %s by %s (tx %s) without that canvas bump', a.tbl, a.row_id, a.canvas_id, a.new_version, a.app, a.tx)
			FROM fault_audit a WHERE a.tbl IN ('nodes', 'edges', 'clients')
			AND NOT EXISTS (SELECT 1 FROM fault_audit c WHERE c.tbl = 'canvases' AND c.op = 'UPDATE'
				AND c.tx = a.tx AND c.canvas_id = a.canvas_id AND c.new_version = a.new_version)
			ORDER BY a.id`},
	}
	for _, q := range queries {
		rows, err := db.Query(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.kind, err)
		}
		n := 0
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return nil, err
			}
			if n++; n <= 5 {
				out = append(out, violation{q.kind, s})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", q.kind, err)
		}
	}
	return out, nil
}

// dbState is a canvas as a client must see it: the Replicache key space,
// values normalised through JSON.
func dbState(ctx context.Context, db *pgxpool.Pool, canvas string) (map[string]any, int64, error) {
	out := map[string]any{}
	var title string
	var version int64
	if err := db.QueryRow(ctx, `SELECT title, version FROM canvases WHERE id = $1`, canvas).Scan(&title, &version); err != nil {
		return nil, 0, fmt.Errorf("canvas %s: %w", canvas, err)
	}
	out["canvas"] = map[string]any{"id": canvas, "title": title}
	rows, err := db.Query(ctx, `SELECT id, kind, x, y, w, h, title, body FROM nodes WHERE canvas_id = $1 AND NOT deleted`, canvas)
	if err != nil {
		return nil, 0, err
	}
	for rows.Next() {
		var id, kind, t, body string
		var x, y, w, h float64
		if err := rows.Scan(&id, &kind, &x, &y, &w, &h, &t, &body); err != nil {
			rows.Close()
			return nil, 0, err
		}
		out["node/"+id] = map[string]any{"id": id, "kind": kind, "x": x, "y": y, "w": w, "h": h, "title": t, "body": body}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	rows, err = db.Query(ctx, `SELECT id, from_node, to_node FROM edges WHERE canvas_id = $1 AND NOT deleted`, canvas)
	if err != nil {
		return nil, 0, err
	}
	for rows.Next() {
		var id, from, to string
		if err := rows.Scan(&id, &from, &to); err != nil {
			rows.Close()
			return nil, 0, err
		}
		out["edge/"+id] = map[string]any{"id": id, "from": from, "to": to}
	}
	rows.Close()
	return out, version, rows.Err()
}

// normalize passes v through JSON so that maps of any shape compare.
func normalize(v any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func sameState(a, b map[string]any) bool { return reflect.DeepEqual(normalize(a), normalize(b)) }

// diffState says briefly how got differs from want.
func diffState(got, want map[string]any) string {
	got, want = normalize(got), normalize(want)
	var parts []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			parts = append(parts, "missing "+k)
		} else if !reflect.DeepEqual(g, w) {
			parts = append(parts, fmt.Sprintf("%s=%v want %v", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			parts = append(parts, "extra "+k)
		}
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("… %d more", len(parts)-4))
	}
	return strings.Join(parts, "; ")
}

// freshPulls pulls every canvas from every instance (base URL) directly
// with a new client group and no cookie, and compares each with the
// database.
func freshPulls(ctx context.Context, db *pgxpool.Pool, tr http.RoundTripper, bases []string, canvases []string) []violation {
	var out []violation
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i, base := range bases {
		for _, cv := range canvases {
			want, _, err := dbState(ctx, db, cv)
			if err != nil {
				out = append(out, violation{kindInstanceDiffs, err.Error()})
				continue
			}
			got, _, err := pullState(ctx, hc, base, cv, fmt.Sprintf("fresh-%d-%d", i, time.Now().UnixNano()), nil, nil)
			if err != nil {
				out = append(out, violation{kindInstanceDiffs, fmt.Sprintf("%s %s: %v", base, cv, err)})
				continue
			}
			if !sameState(got, want) {
				out = append(out, violation{kindInstanceDiffs, fmt.Sprintf("%s %s: %s", base, cv, diffState(got, want))})
			}
		}
	}
	return out
}

// lastWrite is the time of the last audited write.
func lastWrite(ctx context.Context, db *pgxpool.Pool) (time.Time, error) {
	var ts time.Time
	err := db.QueryRow(ctx, `SELECT coalesce(max(ts), now()) FROM fault_audit`).Scan(&ts)
	return ts, err
}
