package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// Canvas is a canvas row.
type Canvas struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Version   int64     `json:"version"`
	Epoch     string    `json:"epoch"`
	CreatedAt time.Time `json:"createdAt"`
	// TombstoneHorizon is the newest version of a purged tombstone: the
	// changes after an older cookie can no longer be read.
	TombstoneHorizon int64 `json:"-"`
	// GroupsPurgedVersion is the version at which client groups of the
	// canvas were last deleted.
	GroupsPurgedVersion int64 `json:"-"`

	titleVersion int64
}

const canvasColumns = `id, title, version, epoch, created_at, title_version, tombstone_horizon, groups_purged_version`

func scanCanvas(row pgx.Row) (Canvas, error) {
	var c Canvas
	err := row.Scan(&c.ID, &c.Title, &c.Version, &c.Epoch, &c.CreatedAt, &c.titleVersion, &c.TombstoneHorizon, &c.GroupsPurgedVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, canvas.ErrNotFound
	}
	return c, err
}

// newEpoch names one incarnation of a canvas; cookies of another incarnation
// are not placed in its history.
func newEpoch() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CreateCanvas creates the canvas id, or returns the existing one with
// created false. An id whose deleted incarnation is still being purged
// has the rest of that purge done first, so the new incarnation (a new
// epoch) starts empty.
func (s *Store) CreateCanvas(ctx context.Context, id, title string) (c Canvas, created bool, err error) {
	return s.createCanvas(ctx, id, title)
}

// GetCanvas returns canvas id or canvas.ErrNotFound.
func (s *Store) GetCanvas(ctx context.Context, id string) (Canvas, error) {
	c, err := scanCanvas(s.pool.QueryRow(ctx, `SELECT `+canvasColumns+` FROM canvases WHERE id = $1`, id))
	if err != nil && !errors.Is(err, canvas.ErrNotFound) {
		err = fmt.Errorf("get canvas %s: %w", id, err)
	}
	return c, err
}

// CanvasPage is one page of a canvas listing.
type CanvasPage struct {
	Canvases []Canvas
	// Next is the id to list after for the next page, "" on the last one.
	Next string
}

// ListCanvases returns up to limit canvases with ids after after, in id
// order (keyset pagination on the primary key). ids, unless all is set,
// restricts the listing to those canvases.
func (s *Store) ListCanvases(ctx context.Context, after string, limit int, all bool, ids []string) (CanvasPage, error) {
	var page CanvasPage
	if !all && len(ids) == 0 {
		return page, nil
	}
	// One more than asked says whether there is a next page.
	rows, err := s.pool.Query(ctx, `SELECT `+canvasColumns+` FROM canvases
		WHERE id > $1 AND ($2 OR id = ANY($3)) ORDER BY id LIMIT $4`, after, all, ids, limit+1)
	if err != nil {
		return page, fmt.Errorf("list canvases: %w", err)
	}
	page.Canvases, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Canvas, error) { return scanCanvas(row) })
	if err != nil {
		return page, fmt.Errorf("list canvases: %w", err)
	}
	if len(page.Canvases) > limit {
		page.Canvases = page.Canvases[:limit]
		page.Next = page.Canvases[limit-1].ID
	}
	return page, nil
}
