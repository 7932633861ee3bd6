package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: PerSecond requests on average, Burst at
// once. PerSecond 0 turns it off.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

func (r RateLimit) validate(name string) error {
	if r.PerSecond < 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) {
		return errors.New(name + " rate must be a finite number >= 0")
	}
	if r.PerSecond > 0 && r.Burst < 1 {
		return errors.New(name + " burst must be at least 1")
	}
	return nil
}

// limiter holds one bucket per key (a user).
type limiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // a bucket unused this long is full again

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(r RateLimit) *limiter {
	if r.PerSecond <= 0 {
		return nil
	}
	idle := time.Duration(float64(r.Burst) / r.PerSecond * float64(time.Second))
	return &limiter{limit: rate.Limit(r.PerSecond), burst: r.Burst, idle: max(idle, time.Minute),
		buckets: map[string]*bucket{}, lastSweep: time.Now()}
}

// allow takes one token of key's bucket, or says how long to wait for one.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.idle {
		// A bucket idle that long is full: forgetting it changes nothing.
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// rateLimit answers 429 with Retry-After when the caller's bucket of l is
// empty. Buckets are per user, so only with authentication on: anonymous
// callers would all share one.
func (s *Server) rateLimit(l *limiter) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if l == nil || s.auth == nil {
			return next
		}
		return func(c echo.Context) error {
			ok, wait := l.allow(principalOf(c).user, time.Now())
			if !ok {
				secs := max(1, int(math.Ceil(wait.Seconds())))
				c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
				return c.JSON(http.StatusTooManyRequests, errorBody{Error: "rate limit exceeded, retry later"})
			}
			return next(c)
		}
	}
}

// streams counts the open SSE streams of each user.
type streams struct {
	mu    sync.Mutex
	open  map[string]int
	limit int
}

func newStreams(limit int) *streams { return &streams{open: map[string]int{}, limit: limit} }

// limitStreams bounds the SSE streams one user holds open (429 past it).
// Like rateLimit it needs users, so it applies with authentication on.
// (echo builds a route's middleware chain per request: state lives in st.)
func (s *Server) limitStreams(st *streams) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if s.auth == nil || st.limit <= 0 {
			return next
		}
		return s.countStream(st, next)
	}
}

func (s *Server) countStream(st *streams, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		user := principalOf(c).user
		st.mu.Lock()
		if st.open[user] >= st.limit {
			st.mu.Unlock()
			return &apiError{status: http.StatusTooManyRequests, message: "too many open event streams for this user"}
		}
		st.open[user]++
		st.mu.Unlock()
		slot := &streamSlot{release: sync.OnceFunc(func() {
			st.mu.Lock()
			if st.open[user]--; st.open[user] == 0 {
				delete(st.open, user)
			}
			st.mu.Unlock()
		})}
		c.Set(streamSlotKey, slot)
		err := next(c)
		if !slot.detached {
			slot.release()
		}
		return err
	}
}

// streamSlot is a user's place among its open streams. A stream that
// outlives its handler (a taken-over connection) detaches the slot and
// releases it when it ends.
type streamSlot struct {
	release  func()
	detached bool
}

const streamSlotKey = "canvasd.streamSlot"

// detachStreamSlot hands the stream's slot, if any, to the caller: the
// returned func gives it back.
func detachStreamSlot(c echo.Context) func() {
	slot, ok := c.Get(streamSlotKey).(*streamSlot)
	if !ok {
		return func() {}
	}
	slot.detached = true
	return slot.release
}
