package pgtest

import (
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder stands in for a test: it records how Schema ended it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// closedURL returns a database URL on a port nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "postgres://postgres:secret@" + addr + "/postgres?sslmode=disable&connect_timeout=5"
}

func schemaOn(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Schema(r)
	}()
	<-done
	return r
}

func TestUnreachableDatabaseFailsWithHint(t *testing.T) {
	t.Setenv("DATABASE_URL", closedURL(t))
	t.Setenv("CI", "")
	t.Setenv(SkipEnv, "")
	r := schemaOn(t)
	require.Empty(t, r.skip)
	require.Contains(t, r.fatal, "PostgreSQL unreachable at postgres://postgres:xxxxx@127.0.0.1:")
	require.NotContains(t, r.fatal, "secret", "the password is not printed")
	require.Contains(t, r.fatal, "DATABASE_URL=postgres://")
	require.Contains(t, r.fatal, SkipEnv+"=1")
}

func TestUnreachableDatabaseSkipsOnlyWhenAskedAndNeverInCI(t *testing.T) {
	t.Setenv("DATABASE_URL", closedURL(t))
	t.Setenv(SkipEnv, "1")
	t.Setenv("CI", "")
	r := schemaOn(t)
	require.Empty(t, r.fatal)
	require.Contains(t, r.skip, SkipEnv)

	t.Setenv("CI", "true")
	r = schemaOn(t)
	require.Empty(t, r.skip)
	require.Contains(t, r.fatal, "PostgreSQL unreachable")
}
