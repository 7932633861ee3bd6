package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
	"github.com/stretchr/testify/assert"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

// safeToRetry is an error pgx reports as failing before anything was sent.
type safeToRetry struct{}

func (safeToRetry) Error() string     { return "not sent" }
func (safeToRetry) SafeToRetry() bool { return true }

// IsTemporary says "retry later" only for failures that go away by
// themselves; anything it does not recognize is permanent, so a bug is
// not answered with an endless "retry later".
func TestIsTemporary(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code, Message: code} }
	temporary := map[string]error{
		"serialization failure":      pg("40001"),
		"deadlock":                   pg("40P01"),
		"lock not available":         pg("55P03"),
		"statement timeout":          pg("57014"),
		"admin shutdown":             pg("57P01"),
		"cannot connect now":         pg("57P03"),
		"connection failure":         pg("08006"),
		"connection does not exist":  pg("08003"),
		"too many connections":       pg("53300"),
		"deadline exceeded":          context.DeadlineExceeded,
		"canceled":                   context.Canceled,
		"busy":                       store.ErrBusy,
		"stale":                      store.ErrStale,
		"safe to retry":              safeToRetry{},
		"conn closed":                pgconn.ErrConnClosed,
		"connect error":              &pgconn.ConnectError{},
		"connection reset":           &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		"unexpected eof":             io.ErrUnexpectedEOF,
		"closed pool":                puddle.ErrClosedPool,
		"wrapped deadline":           fmt.Errorf("load canvas c: %w", context.DeadlineExceeded),
		"wrapped serialization":      fmt.Errorf("commit: %w", fmt.Errorf("write nodes: %w", pg("40001"))),
		"wrapped busy with a reason": fmt.Errorf("%w: %s", store.ErrBusy, "canceling statement due to lock timeout"),
	}
	for name, err := range temporary {
		assert.True(t, store.IsTemporary(err), name)
	}
	permanent := map[string]error{
		"nil":                   nil,
		"plain error":           errors.New("something unexpected"),
		"recovered panic":       fmt.Errorf("internal error: %v", "runtime error: invalid memory address or nil pointer dereference"),
		"wrapped plain error":   fmt.Errorf("load canvas c: %w", errors.New("bad argument")),
		"unique violation":      pg("23505"),
		"syntax error":          pg("42601"),
		"undefined table":       pg("42P01"),
		"out of memory":         pg("53200"),
		"integrity in rollback": pg("40002"),
		"not found":             canvas.ErrNotFound,
		"rule error":            &canvas.RuleError{Mutator: "m", Reason: "r"},
		"wrapped unique":        fmt.Errorf("write nodes: %w", pg("23505")),
	}
	for name, err := range permanent {
		assert.False(t, store.IsTemporary(err), name)
	}
}
