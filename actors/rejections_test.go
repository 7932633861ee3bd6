package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/canvasd/canvasd/canvas"
)

// TestRejectionLogIsSampledAndBounded: a flood of rejected mutations with
// huge names writes a bounded number of bounded lines, each saying how
// many were left out, and never the mutator name twice.
func TestRejectionLogIsSampledAndBounded(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := newSampledLog(rejectionLogsPerSecond)
	name := strings.Repeat("x", 100_000)
	_, err := canvas.Decode(name, nil, canvas.DefaultLimits())
	require.Error(t, err)
	for i := range 5000 {
		l.log(zap.New(core), canvas.Mutation{ID: int64(i + 1), ClientID: "c", Name: name}, err)
	}
	burst := logs.Len()
	// Once the rate allows, the next line carries the count left out.
	require.Eventually(t, func() bool {
		l.log(zap.New(core), canvas.Mutation{ID: 1, ClientID: "c", Name: "moveNode"},
			&canvas.RuleError{Mutator: "moveNode", Reason: strings.Repeat("r", 10_000)})
		return logs.Len() > burst
	}, 5*time.Second, 10*time.Millisecond)
	entries := logs.All()
	require.LessOrEqual(t, len(entries), 2*rejectionLogsPerSecond, "lines grew with the requests")
	total := int64(len(entries))
	for _, e := range entries {
		size := 0
		for _, f := range e.Context {
			size += len(f.String)
			if f.Key == "unlogged_before" {
				total += f.Integer
			}
		}
		require.Less(t, size, 1024, "a line carries a bounded part of the input")
	}
	require.Greater(t, total, int64(len(entries)), "the lines left out are counted")
	require.NotContains(t, err.Error(), name)
}
