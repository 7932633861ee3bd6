package actors

import (
	"errors"
	"sync/atomic"
	"unicode/utf8"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/canvasd/canvasd/canvas"
)

// rejectionLogsPerSecond bounds the log lines of rejected mutations, for
// the whole system: a client pushing rejected mutations as fast as it can
// must not grow the log with its request volume.
const rejectionLogsPerSecond = 10

// maxLoggedMutator and maxLoggedReason bound what one line carries of the
// client's input.
const (
	maxLoggedMutator = 64
	maxLoggedReason  = 256
)

// sampledLog logs rejected mutations at a bounded rate; the lines it drops
// are counted into the next line it writes.
type sampledLog struct {
	limit   *rate.Limiter
	dropped atomic.Int64
}

func newSampledLog(perSecond float64) *sampledLog {
	return &sampledLog{limit: rate.NewLimiter(rate.Limit(perSecond), int(perSecond))}
}

func (l *sampledLog) log(log *zap.Logger, m canvas.Mutation, err error) {
	if !l.limit.Allow() {
		l.dropped.Add(1)
		return
	}
	reason := err.Error()
	var re *canvas.RuleError
	if errors.As(err, &re) {
		reason = re.Reason // the mutator is its own field, not repeated
	}
	log.Info("mutation rejected", zap.String("client", m.ClientID), zap.Int64("id", m.ID),
		zap.String("mutator", truncate(m.Name, maxLoggedMutator)), zap.String("reason", truncate(reason, maxLoggedReason)),
		zap.Int64("unlogged_before", l.dropped.Swap(0)))
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
