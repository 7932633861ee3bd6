package httpapi

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

type pullMetrics struct {
	count     atomic.Int64
	fromStore atomic.Int64
}

func (s *Server) metrics(c echo.Context) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/plain; version=0.0.4")
	w.WriteHeader(http.StatusOK)
	if _, err := s.sys.Metrics.WriteTo(w); err != nil {
		return nil
	}
	st := s.store.Pool().Stat()
	_, _ = fmt.Fprintf(w, "# HELP canvasd_pulls_total Pulls answered.\n# TYPE canvasd_pulls_total counter\ncanvasd_pulls_total %d\n", s.pulls.count.Load())
	_, _ = fmt.Fprintf(w, "# HELP canvasd_pulls_from_store_total Pulls answered from the database rather than canvas memory.\n# TYPE canvasd_pulls_from_store_total counter\ncanvasd_pulls_from_store_total %d\n", s.pulls.fromStore.Load())
	_, _ = fmt.Fprintf(w, "# HELP canvasd_db_conns Database connections by state.\n# TYPE canvasd_db_conns gauge\n"+
		"canvasd_db_conns{state=\"acquired\"} %d\ncanvasd_db_conns{state=\"idle\"} %d\ncanvasd_db_conns{state=\"total\"} %d\n",
		st.AcquiredConns(), st.IdleConns(), st.TotalConns())
	return nil
}
