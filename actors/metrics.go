package actors

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics are the actor system's counters, exported in the Prometheus text
// format by WriteTo.
type Metrics struct {
	Pushes            atomic.Int64 // pushes answered
	Mutations         atomic.Int64 // mutations applied or skipped as permanent errors
	RejectedMutations atomic.Int64 // permanent mutation errors
	Transactions      atomic.Int64 // canvas batches committed
	Statements        atomic.Int64 // statements writing canvas batches (many canvases each)
	WriteErrors       atomic.Int64 // write transactions failed
	Overloaded        atomic.Int64 // pushes refused for a full canvas queue
	Busy              atomic.Int64 // canvas batches refused because another session held the canvas row
	Pokes             atomic.Int64 // pokes handed to subscribers
	NotifySent        atomic.Int64 // pg_notify calls by the notifier
	NotifyReceived    atomic.Int64 // notifications from other instances
	ActiveCanvases    atomic.Int64
	Subscribers       atomic.Int64
	PresenceDelivered atomic.Int64 // presence events handed to SSE subscribers
	CanvasesDeleted   atomic.Int64 // canvases deleted by this instance
	PurgeBatches      atomic.Int64 // purge batches of deleted canvases run by this instance
}

// WriteTo writes m in the Prometheus text exposition format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	rows := []struct {
		name, kind, help string
		v                *atomic.Int64
	}{
		{"canvasd_pushes_total", "counter", "Pushes answered.", &m.Pushes},
		{"canvasd_mutations_total", "counter", "Mutations processed (applied or rejected).", &m.Mutations},
		{"canvasd_mutations_rejected_total", "counter", "Mutations skipped as permanent errors.", &m.RejectedMutations},
		{"canvasd_write_transactions_total", "counter", "Canvas batches committed.", &m.Transactions},
		{"canvasd_commit_statements_total", "counter", "Statements writing canvas batches; each commits the batches of many canvases.", &m.Statements},
		{"canvasd_write_errors_total", "counter", "Write transactions failed.", &m.WriteErrors},
		{"canvasd_pushes_overloaded_total", "counter", "Pushes refused because their canvas queue was full.", &m.Overloaded},
		{"canvasd_canvas_busy_total", "counter", "Canvas batches refused (503) because another session held the canvas row past the lock timeout.", &m.Busy},
		{"canvasd_pokes_total", "counter", "Pokes handed to SSE subscribers.", &m.Pokes},
		{"canvasd_notify_sent_total", "counter", "pg_notify calls made by the notifier.", &m.NotifySent},
		{"canvasd_notify_received_total", "counter", "Notifications received from other instances.", &m.NotifyReceived},
		{"canvasd_active_canvases", "gauge", "Canvas actors in memory.", &m.ActiveCanvases},
		{"canvasd_sse_subscribers", "gauge", "Open SSE streams.", &m.Subscribers},
		{"canvasd_presence_delivered_total", "counter", "Presence events handed to SSE subscribers.", &m.PresenceDelivered},
		{"canvasd_canvases_deleted_total", "counter", "Canvases deleted through this instance.", &m.CanvasesDeleted},
		{"canvasd_purge_batches_total", "counter", "Batches run to remove the rows of deleted canvases.", &m.PurgeBatches},
	}
	var n int64
	for _, r := range rows {
		k, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", r.name, r.help, r.name, r.kind, r.name, r.v.Load())
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
