package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// waitPoke waits until events carries a poke for version want (or later),
// failing after within.
func waitPoke(t *testing.T, events <-chan sseEvent, want int64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "stream ended")
			if ev.name == "poke" && mustInt(t, ev.id) >= want {
				return
			}
		case <-deadline:
			t.Fatalf("no poke for version %d within %s", want, within)
		}
	}
}

// A pull on instance A that reads instance B's commit before B's
// notification arrives must not swallow the poke: A's subscribers are
// poked with the new version although A then already knows it. B's
// notifications are held back far longer than the test waits, so the
// race is won by the pull every time.
func TestPokeNotSwallowedByPullBeforeNotification(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	// A's version check is off: it would poke within a second whatever
	// the canvas actor does, and hide a swallowed poke.
	a := harness.Start(t, pgtest.PoolFrom(t, cfg, true), func(c *actorsConfig, _ *httpConfig) { c.VersionCheck = 0 })
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false), func(c *actorsConfig, _ *httpConfig) {
		c.NotifyDelay = time.Minute
	})
	a.CreateCanvas(t, "c")
	mustPush(t, a, "c", "ga", M{1, "a", "createNode", node("n", 0, 0)})
	_, events := openSSE(t, a, "c", "")

	for i := int64(1); i <= 3; i++ {
		mustPush(t, b, "c", "gb", M{i, "b", "moveNode", move("n", float64(i), 0)})
		// Another client of A pulls: A's canvas reads B's commit in.
		p := a.Pull(t, "c", fmt.Sprintf("other%d", i), nil)
		require.Equal(t, 1+i, p.Order(t))
		waitPoke(t, events, 1+i, 5*time.Second)
	}
}
