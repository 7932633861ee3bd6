package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas/store"
)

// Push outcomes, the values of canvasd_pushes_total's label.
const (
	outcomeApplied      = "applied"                // committed (or every mutation already applied)
	outcomeClientState  = "client_state_not_found" // a Replicache protocol error answered with 200
	outcomeOverloaded   = "overloaded"             // 503: the canvas queue was full
	outcomeUnavailable  = "unavailable"            // 503: database unavailable, shutting down
	outcomeRateLimited  = "rate_limited"           // 429
	outcomeUnauthorized = "unauthorized"           // 401 or 403
	outcomeInvalid      = "invalid"                // another 4xx
	outcomeError        = "error"                  // 5xx
	outcomeCanceled     = "canceled"               // the client went away before the answer
)

// outcomeKey is where a handler leaves an outcome the status cannot tell.
const outcomeKey = "canvasd.outcome"

// httpMetrics are the HTTP layer's figures. Every labelled child is
// resolved once here, so recording costs no lookup and no allocation.
type httpMetrics struct {
	pushSeconds  prometheus.Histogram
	pullSeconds  prometheus.Histogram
	pullBytes    prometheus.Histogram
	pulls        prometheus.Counter
	pullsFromDB  prometheus.Counter
	pushOutcomes map[string]prometheus.Counter
}

func newHTTPMetrics(reg prometheus.Registerer, st *store.Store) (*httpMetrics, error) {
	latency := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms … 16 s
	m := &httpMetrics{
		pushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canvasd_push_duration_seconds", Help: "Time to answer a push request, its commit included.", Buckets: latency,
		}),
		pullSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canvasd_pull_duration_seconds", Help: "Time to answer a pull request.", Buckets: latency,
		}),
		pullBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canvasd_pull_response_bytes", Help: "Size of pull responses before compression.",
			Buckets: prometheus.ExponentialBuckets(128, 4, 10), // 128 B … 32 MiB
		}),
		pulls:        prometheus.NewCounter(prometheus.CounterOpts{Name: "canvasd_pulls_total", Help: "Pulls answered."}),
		pullsFromDB:  prometheus.NewCounter(prometheus.CounterOpts{Name: "canvasd_pulls_from_store_total", Help: "Pulls answered from the database rather than canvas memory."}),
		pushOutcomes: make(map[string]prometheus.Counter),
	}
	pushes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "canvasd_pushes_total", Help: "Push requests by outcome.",
	}, []string{"outcome"})
	for _, o := range []string{outcomeApplied, outcomeClientState, outcomeOverloaded, outcomeUnavailable,
		outcomeRateLimited, outcomeUnauthorized, outcomeInvalid, outcomeError, outcomeCanceled} {
		m.pushOutcomes[o] = pushes.WithLabelValues(o)
	}
	cs := []prometheus.Collector{m.pushSeconds, m.pullSeconds, m.pullBytes, m.pulls, m.pullsFromDB, pushes}
	if st != nil {
		cs = append(cs, poolCollector{st.Pool()})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe answers the request (errors included, so the status is known)
// and records its duration and outcome.
func (s *Server) observe(seconds prometheus.Histogram, outcomes map[string]prometheus.Counter, bytes prometheus.Histogram) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			answered := false
			defer func() {
				// A panic passes through on its way to Recover (which
				// answers 500): count it as an error here.
				if !answered && outcomes != nil {
					outcomes[outcomeError].Inc()
				}
			}()
			err := next(c)
			answered = true
			if err != nil {
				c.Error(err)
			}
			seconds.Observe(time.Since(start).Seconds())
			if bytes != nil && c.Response().Status == http.StatusOK {
				bytes.Observe(float64(c.Response().Size))
			}
			if outcomes != nil {
				outcomes[outcome(c, err)].Inc()
			}
			return nil
		}
	}
}

// outcome classifies an answered request.
func outcome(c echo.Context, err error) string {
	if o, ok := c.Get(outcomeKey).(string); ok {
		return o
	}
	if !c.Response().Committed {
		return outcomeCanceled
	}
	switch status := c.Response().Status; {
	case status == http.StatusOK:
		return outcomeApplied
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return outcomeUnauthorized
	case status == http.StatusTooManyRequests:
		return outcomeRateLimited
	case status == http.StatusServiceUnavailable && errors.Is(err, actors.ErrOverloaded):
		return outcomeOverloaded
	case status == http.StatusServiceUnavailable:
		return outcomeUnavailable
	case status >= 500:
		return outcomeError
	default:
		return outcomeInvalid
	}
}

// metrics serves /metrics.
func (s *Server) metrics(c echo.Context) error { return s.scrape(c) }

// metricsHandler serves reg in the Prometheus exposition formats.
func metricsHandler(reg prometheus.Gatherer) echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// poolCollector exports the database pool's statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolConns         = prometheus.NewDesc("canvasd_db_conns", "Database connections of the pool by state.", []string{"state"}, nil)
	poolMaxConns      = prometheus.NewDesc("canvasd_db_max_conns", "Largest size of the pool.", nil, nil)
	poolAcquires      = prometheus.NewDesc("canvasd_db_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolEmptyAcquires = prometheus.NewDesc("canvasd_db_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil)
	poolAcquireWait   = prometheus.NewDesc("canvasd_db_acquire_wait_seconds_total", "Time spent waiting for pool connections.", nil, nil)
	poolCanceled      = prometheus.NewDesc("canvasd_db_canceled_acquires_total", "Acquires abandoned by their caller.", nil, nil)
)

func (p poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMaxConns, poolAcquires, poolEmptyAcquires, poolAcquireWait, poolCanceled} {
		ch <- d
	}
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := p.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.TotalConns()), "total")
	ch <- prometheus.MustNewConstMetric(poolMaxConns, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmptyAcquires, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolAcquireWait, prometheus.CounterValue, st.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(st.CanceledAcquireCount()))
}
