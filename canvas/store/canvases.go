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

	titleVersion int64
}

const canvasColumns = `id, title, version, epoch, created_at, title_version`

func scanCanvas(row pgx.Row) (Canvas, error) {
	var c Canvas
	err := row.Scan(&c.ID, &c.Title, &c.Version, &c.Epoch, &c.CreatedAt, &c.titleVersion)
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
// created false.
func (s *Store) CreateCanvas(ctx context.Context, id, title string) (c Canvas, created bool, err error) {
	c, err = scanCanvas(s.pool.QueryRow(ctx,
		`INSERT INTO canvases (id, epoch, title) VALUES ($1, $2, $3)
		 ON CONFLICT (id) DO NOTHING RETURNING `+canvasColumns, id, newEpoch(), title))
	if err == nil {
		return c, true, nil
	}
	if !errors.Is(err, canvas.ErrNotFound) {
		return c, false, fmt.Errorf("create canvas %s: %w", id, err)
	}
	c, err = s.GetCanvas(ctx, id)
	return c, false, err
}

// GetCanvas returns canvas id or canvas.ErrNotFound.
func (s *Store) GetCanvas(ctx context.Context, id string) (Canvas, error) {
	c, err := scanCanvas(s.pool.QueryRow(ctx, `SELECT `+canvasColumns+` FROM canvases WHERE id = $1`, id))
	if err != nil && !errors.Is(err, canvas.ErrNotFound) {
		err = fmt.Errorf("get canvas %s: %w", id, err)
	}
	return c, err
}
