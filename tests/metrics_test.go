package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// scrape reads /metrics and parses it with Prometheus's own text parser.
func scrape(t *testing.T, s *harness.Server) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := s.Do(t, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusOK, status)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, string(body))
	return fams
}

// value returns the counter, gauge or untyped value of name's series with
// the given label pairs, or a histogram's sample count; -1 if absent.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// After real pushes, pulls and pokes on two instances, /metrics parses with
// the Prometheus text parser and every figure an operator watches moved.
func TestMetricsMoveWithRealTraffic(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	a := harness.Start(t, pgtest.PoolFrom(t, cfg, true))
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false))

	before := scrape(t, a)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "canvasd_push_duration_seconds",
		"canvasd_commit_duration_seconds", "canvasd_pull_duration_seconds", "canvasd_db_conns",
		"canvasd_client_groups_deleted_total", "canvasd_tombstones_deleted_total"} {
		require.Contains(t, before, name, "exported before any traffic")
	}
	require.Zero(t, value(before, "canvasd_push_duration_seconds"))

	a.CreateCanvas(t, "c")
	_, eventsA := openSSE(t, a, "c", "")
	_, eventsB := openSSE(t, b, "c", "")
	require.Eventually(t, func() bool {
		return value(scrape(t, a), "canvasd_sse_subscribers") == 1 && value(scrape(t, b), "canvasd_sse_subscribers") == 1
	}, 5*time.Second, 10*time.Millisecond)

	mustPush(t, a, "c", "g", M{1, "cl", "createNode", node("n1", 0, 0)}, M{2, "cl", "createNode", node("n1", 0, 0)}) // the second breaks a rule
	waitPoke(t, eventsA, 1, 5*time.Second)
	waitPoke(t, eventsB, 1, 5*time.Second)
	p := a.Pull(t, "c", "g", nil)
	require.Len(t, values(t, p), 2)
	b.Pull(t, "c", "g2", nil)
	status, _ := push(t, a, "c", "g", M{3, "cl", "moveNode", move("n1", 1, 1)})
	require.Equal(t, http.StatusOK, status)
	status, _ = a.Do(t, http.MethodPost, "/api/canvases/c/replicache/push", "{")
	require.Equal(t, http.StatusBadRequest, status)

	var fa, fb map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fa, fb = scrape(t, a), scrape(t, b)
		return value(fa, "canvasd_poke_delivery_seconds") >= 1 && value(fb, "canvasd_poke_delivery_seconds") >= 1 &&
			value(fb, "canvasd_notify_lag_seconds") >= 1
	}, 5*time.Second, 10*time.Millisecond, "poke delivery and notify lag observed")

	require.Equal(t, 3.0, value(fa, "canvasd_push_duration_seconds"))
	require.Equal(t, 2.0, value(fa, "canvasd_pushes_total", "outcome", "applied"))
	require.Equal(t, 1.0, value(fa, "canvasd_pushes_total", "outcome", "invalid"))
	require.Equal(t, 2.0, value(fa, "canvasd_mutations_total", "outcome", "applied"))
	require.Equal(t, 1.0, value(fa, "canvasd_mutations_total", "outcome", "rejected"))
	require.GreaterOrEqual(t, value(fa, "canvasd_commit_duration_seconds"), 2.0)
	require.GreaterOrEqual(t, value(fa, "canvasd_commit_batch_mutations"), 2.0)
	require.GreaterOrEqual(t, value(fa, "canvasd_commit_batch_canvases"), 2.0)
	require.Equal(t, 1.0, value(fa, "canvasd_pull_duration_seconds"))
	require.Equal(t, 1.0, value(fa, "canvasd_pull_response_bytes"))
	require.Greater(t, fa["canvasd_pull_response_bytes"].GetMetric()[0].GetHistogram().GetSampleSum(), 100.0, "a pull of two rows")
	require.Equal(t, 1.0, value(fa, "canvasd_pulls_total"))
	require.Equal(t, 1.0, value(fa, "canvasd_active_canvases"))
	require.Greater(t, value(fa, "canvasd_db_conns", "state", "total"), 0.0)
	require.Greater(t, value(fa, "canvasd_db_acquires_total"), 0.0)
	require.GreaterOrEqual(t, value(fa, "canvasd_notify_sent_total"), 1.0)
	require.GreaterOrEqual(t, value(fb, "canvasd_notify_received_total"), 1.0)
	require.Greater(t, value(fa, "go_goroutines"), 0.0)
}

// The Grafana dashboard shipped with canvasd plots only metrics the server
// exports.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	fams := scrape(t, s)
	data, err := os.ReadFile(filepath.Join("..", "cmd", "canvasd", "deploy", "grafana", "canvasd.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	require.NotEmpty(t, dash.Panels)
	name := regexp.MustCompile(`\b(?:canvasd|go|process)_[a-z_]+`)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if f, ok := fams[strings.TrimSuffix(n, suffix)]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
						base = strings.TrimSuffix(n, suffix)
					}
				}
				require.Contains(t, fams, base, "panel %q: %s", p.Title, tg.Expr)
			}
		}
	}
}

// Pushes refused for their token are counted as unauthorized.
func TestMetricsCountUnauthorizedPushes(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	status, _ := s.Do(t, http.MethodPost, "/api/canvases/c/replicache/push", pushBody("g", M{1, "x", "createNode", node("n", 0, 0)}))
	require.Equal(t, http.StatusUnauthorized, status)
	reader := s.As(hsToken(t, "reader", "read:c"))
	status, _ = reader.Do(t, http.MethodPost, "/api/canvases/c/replicache/push", pushBody("g", M{1, "x", "createNode", node("n", 0, 0)}))
	require.Equal(t, http.StatusForbidden, status)
	mustPush(t, service, "c", "g2", M{1, "y", "createNode", node("n", 0, 0)})
	f := scrape(t, service)
	require.Equal(t, 2.0, value(f, "canvasd_pushes_total", "outcome", "unauthorized"))
	require.Equal(t, 1.0, value(f, "canvasd_pushes_total", "outcome", "applied"))
}
