package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress prints one status line to stderr, rewritten in place (\r) every
// second while a run goes: mode, phase, elapsed, mutations/s over the last
// second, errors so far. A nil *progress prints nothing.
type progress struct {
	w     io.Writer
	point string // sweep point label, set by the caller

	mu    sync.Mutex
	phase string
	stop  chan struct{}
	done  chan struct{}
	width int
}

func newProgress(w io.Writer, quiet bool) *progress {
	if quiet {
		return nil
	}
	return &progress{w: w}
}

func (p *progress) begin(mode string, start, mStart, mEnd time.Time, total *atomic.Int64, errs *Errors) {
	if p == nil {
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	p.phase = ""
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastAt := total.Load(), time.Now()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				cur := total.Load()
				rate := float64(cur-last) / now.Sub(lastAt).Seconds()
				last, lastAt = cur, now
				p.mu.Lock()
				phase := p.phase
				if phase == "" {
					phase = "warmup"
					if !now.Before(mStart) {
						phase = "measure"
					}
				}
				line := fmt.Sprintf("%s %s [%s] %5.1fs/%.0fs  %8.0f mut/s  errors %d",
					mode, p.point, phase, now.Sub(start).Seconds(), mEnd.Sub(start).Seconds(), rate, errs.Total())
				p.print(line)
				p.mu.Unlock()
			}
		}
	}()
}

// print rewrites the line; callers hold p.mu.
func (p *progress) print(line string) {
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
}

func (p *progress) phaseSet(s string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase = s
	p.mu.Unlock()
}

// end stops the ticker and clears the line.
func (p *progress) end() {
	if p == nil || p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.stop = nil
	p.mu.Lock()
	if p.width > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.width)+"\r")
		p.width = 0
	}
	p.mu.Unlock()
}

// note prints a whole line (clearing the progress line first).
func (p *progress) note(format string, a ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.width)+"\r")
		p.width = 0
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}
