package actors

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the actor system's figures. The counters are plain atomics,
// bumped on the hot path at the cost of one atomic add and read by the
// Prometheus registry only when it is scraped; histograms are observed
// directly (no labels to resolve, no allocation).
type Metrics struct {
	Pushes            atomic.Int64 // pushes answered
	Mutations         atomic.Int64 // mutations applied or skipped as permanent errors
	RejectedMutations atomic.Int64 // permanent mutation errors
	Transactions      atomic.Int64 // canvas batches committed
	Statements        atomic.Int64 // statements writing canvas batches (many canvases each)
	WriteErrors       atomic.Int64 // write transactions failed
	Overloaded        atomic.Int64 // pushes refused for a full canvas queue
	Busy              atomic.Int64 // write attempts that found the canvas row held by another session
	Pokes             atomic.Int64 // pokes handed to subscribers
	NotifySent        atomic.Int64 // pg_notify calls by the notifier
	NotifyReceived    atomic.Int64 // notifications from other instances
	ActiveCanvases    atomic.Int64
	Subscribers       atomic.Int64
	PresenceDelivered atomic.Int64 // presence events handed to SSE subscribers
	CanvasesDeleted   atomic.Int64 // canvases deleted by this instance
	PurgeBatches      atomic.Int64 // purge batches of deleted canvases run by this instance
	GroupsDeleted     atomic.Int64 // client groups deleted by the lifecycle collector
	TombstonesDeleted atomic.Int64 // tombstones purged by the lifecycle collector
	GCRuns            atomic.Int64 // collector runs that held the lock
	GCErrors          atomic.Int64 // collector runs that failed

	// CommitSeconds is the time of one write statement (and commit).
	CommitSeconds prometheus.Histogram
	// BatchMutations and BatchCanvases are the mutations and canvases one
	// write statement carries.
	BatchMutations prometheus.Histogram
	BatchCanvases  prometheus.Histogram
	// NotifyLag is the time from another instance sending a poke
	// notification to its receipt here.
	NotifyLag prometheus.Histogram
	// PokeDelivery is the time from a commit to its poke written to an
	// SSE stream (poke window and stream queue included); for commits of
	// other instances, from the notification's receipt.
	PokeDelivery prometheus.Histogram
}

// init creates the histograms.
func (m *Metrics) init() {
	m.CommitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "canvasd_commit_duration_seconds", Help: "Time of one write statement, commit included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms … 4 s
	})
	m.BatchMutations = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "canvasd_commit_batch_mutations", Help: "Mutations written by one write statement.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 … 4096
	})
	m.BatchCanvases = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "canvasd_commit_batch_canvases", Help: "Canvases written by one write statement.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 … 256
	})
	m.PokeDelivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "canvasd_poke_delivery_seconds", Help: "Time from a commit to its poke written to an SSE stream (from the notification's receipt for other instances' commits).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	m.NotifyLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "canvasd_notify_lag_seconds", Help: "Time from another instance sending a poke notification to its receipt here (includes clock skew between hosts).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
}

// register adds m to reg.
func (m *Metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.CommitSeconds, m.BatchMutations, m.BatchCanvases, m.NotifyLag, m.PokeDelivery, (*atomicCollector)(m)} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// atomicCollector exports the atomic counters and gauges of Metrics.
type atomicCollector Metrics

type atomicMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(m *Metrics) float64
	label []string
}

func load(v *atomic.Int64) float64 { return float64(v.Load()) }

// mutationsDesc is one family with a series per outcome.
var mutationsDesc = desc("canvasd_mutations_total", "Mutations processed, by outcome: applied, or rejected by a rule (skipped; the client still advances).", "outcome")

var atomicMetrics = []atomicMetric{
	{desc("canvasd_pushes_committed_total", "Pushes answered by their canvas actor (committed, skipped or refused as protocol errors)."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.Pushes) }, nil},
	{mutationsDesc, prometheus.CounterValue,
		func(m *Metrics) float64 { return float64(m.Mutations.Load() - m.RejectedMutations.Load()) }, []string{"applied"}},
	{mutationsDesc, prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.RejectedMutations) }, []string{"rejected"}},
	{desc("canvasd_write_transactions_total", "Canvas batches committed."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.Transactions) }, nil},
	{desc("canvasd_commit_statements_total", "Statements writing canvas batches; each commits the batches of many canvases."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.Statements) }, nil},
	{desc("canvasd_write_errors_total", "Write transactions failed."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.WriteErrors) }, nil},
	{desc("canvasd_pushes_overloaded_total", "Pushes refused because their canvas queue was full."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.Overloaded) }, nil},
	{desc("canvasd_canvas_busy_total", "Attempts to write a canvas that found its row held by another session (each waits at most 50 ms; a push still waiting after the lock timeout is answered 503)."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.Busy) }, nil},
	{desc("canvasd_pokes_total", "Pokes handed to SSE subscribers."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.Pokes) }, nil},
	{desc("canvasd_notify_sent_total", "Notifications sent to other instances."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.NotifySent) }, nil},
	{desc("canvasd_notify_received_total", "Notifications received from other instances."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.NotifyReceived) }, nil},
	{desc("canvasd_active_canvases", "Canvas actors in memory."), prometheus.GaugeValue,
		func(m *Metrics) float64 { return load(&m.ActiveCanvases) }, nil},
	{desc("canvasd_sse_subscribers", "Open SSE streams."), prometheus.GaugeValue,
		func(m *Metrics) float64 { return load(&m.Subscribers) }, nil},
	{desc("canvasd_presence_delivered_total", "Presence events handed to SSE subscribers."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.PresenceDelivered) }, nil},
	{desc("canvasd_canvases_deleted_total", "Canvases deleted through this instance."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.CanvasesDeleted) }, nil},
	{desc("canvasd_purge_batches_total", "Batches run to remove the rows of deleted canvases."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.PurgeBatches) }, nil},
	{desc("canvasd_client_groups_deleted_total", "Idle client groups deleted (with their clients) by this instance's collector."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.GroupsDeleted) }, nil},
	{desc("canvasd_tombstones_deleted_total", "Tombstones (deleted nodes and edges) purged by this instance's collector."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.TombstonesDeleted) }, nil},
	{desc("canvasd_gc_runs_total", "Collector runs by this instance (the ones that held the cluster-wide lock)."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.GCRuns) }, nil},
	{desc("canvasd_gc_errors_total", "Collector runs that failed."), prometheus.CounterValue,
		func(m *Metrics) float64 { return load(&m.GCErrors) }, nil},
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func (c *atomicCollector) Describe(ch chan<- *prometheus.Desc) {
	for i, am := range atomicMetrics {
		if i > 0 && am.desc == atomicMetrics[i-1].desc {
			continue
		}
		ch <- am.desc
	}
}

func (c *atomicCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	for _, am := range atomicMetrics {
		ch <- prometheus.MustNewConstMetric(am.desc, am.kind, am.value(m), am.label...)
	}
}
