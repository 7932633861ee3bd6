package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	m := parseMetrics("# HELP x y\n# TYPE x counter\ncanvasd_pulls_total 12\ncanvasd_db_conns{state=\"idle\"} 3\nbad line\n\ncanvasd_active_canvases 1e+06\n")
	if m["canvasd_pulls_total"] != 12 || m[`canvasd_db_conns{state="idle"}`] != 3 || m["canvasd_active_canvases"] != 1e6 {
		t.Fatalf("got %v", m)
	}
	if len(m) != 3 {
		t.Fatalf("extra entries: %v", m)
	}
}

func TestParseHeapProfile(t *testing.T) {
	text := "heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 100\n# HeapInuse = 4096000\n# Stack = 655360 / 655360\n# MSpan = 1 / 2\n"
	h, s := parseHeapProfile(text)
	if h != 4096000 || s != 655360 {
		t.Fatalf("heap %d stack %d", h, s)
	}
	if h, s := parseHeapProfile("nothing"); h != 0 || s != 0 {
		t.Fatal("want zeros")
	}
}

func TestParseNoFileLimit(t *testing.T) {
	text := "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            20000                40000                files     \n"
	if n := parseNoFileLimit(text); n != 20000 {
		t.Fatalf("got %d", n)
	}
	if n := parseNoFileLimit("Max open files            unlimited   unlimited  files\n"); n != -1 {
		t.Fatalf("unlimited: got %d", n)
	}
}

func TestReadPokes(t *testing.T) {
	long := strings.Repeat("x", 2000)
	stream := ": connected\n\nevent: poke\nid: 7\ndata: {\"canvas\":\"a\",\"version\":7}\n\n: ping\n\n" +
		"data: " + long + "\n\n" + // skipped (too long, and not a poke)
		"event: poke\r\ndata: {\"canvas\":\"a\",\"version\":9}\r\n\r\n" + // no id: the data's version
		"event: other\nid: 11\n\n" +
		"event: poke\nid: 12\ndata: {}\n\n" +
		"event: poke\nid: 13\n" // not dispatched: the stream ends first
	var got []int64
	if err := readPokes(strings.NewReader(stream), func(v int64, at time.Time) { got = append(got, v) }); err != nil {
		t.Fatal(err)
	}
	if want := []int64{7, 9, 12}; !equalInts(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFanoutLatency(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	// Canvas 0 has subscribers 0 and 1; canvas 1 has subscriber 2.
	subsOf := [][]int{{0, 1}, {2}}
	events := [][]pokeEvent{
		{{5, at(10)}, {6, at(30)}}, // sub 0
		{{7, at(50)}},              // sub 1: coalesced, version 7 covers 5 and 6
		{{3, at(5)}, {4, at(200)}}, // sub 2
	}
	samples := []fanSample{
		{canvas: 0, ack: at(8), version: 5},   // sub0: 2 ms, sub1: 42 ms
		{canvas: 0, ack: at(40), version: 6},  // sub0: poke before ack -> 0, sub1: 10 ms
		{canvas: 1, ack: at(100), version: 4}, // sub2: 100 ms
		{canvas: 1, ack: at(300), version: 9}, // sub2: never
	}
	h := NewHist()
	missed := fanoutLatency(samples, subsOf, events, h)
	if missed != 1 || h.Count() != 5 {
		t.Fatalf("missed %d count %d", missed, h.Count())
	}
	if h.Quantile(0) != 0 || h.Quantile(1) != 100*time.Millisecond {
		t.Fatalf("min %v max %v", h.Quantile(0), h.Quantile(1))
	}
	if got := h.Quantile(.5); got < 9900*time.Microsecond || got > 10100*time.Microsecond { // histogram resolution
		t.Fatalf("median %v", got)
	}
}

func TestCountStats(t *testing.T) {
	mean, mx := countStats([]int{1, 2, 3, 10})
	if mean != 4 || mx != 10 {
		t.Fatalf("mean %v max %d", mean, mx)
	}
	if mean, mx := countStats(nil); mean != 0 || mx != 0 {
		t.Fatal("empty")
	}
	var f fanSub
	f.add(3, time.Now())
	f.add(2, time.Now())
	if f.count() != 2 || f.maxVersion() != 3 {
		t.Fatalf("count %d max %d", f.count(), f.maxVersion())
	}
}

func TestBackUnderAndSampler(t *testing.T) {
	if !backUnder(199, 100, 2) || backUnder(200, 100, 2) || backUnder(50, 0, 2) || backUnder(0, 100, 2) {
		t.Fatal("backUnder")
	}
	var s rssSampler
	for _, v := range []int64{5, 9, 3} {
		s.observe(v)
	}
	if s.peak.Load() != 9 {
		t.Fatalf("peak %d", s.peak.Load())
	}
}

func TestScenarioConfig(t *testing.T) {
	cfg, err := ParseConfig([]string{"pull", "--url", "http://127.0.0.1:9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scenario != "pull" || cfg.Nodes != 10_000 || cfg.Canvases != 1 || cfg.Scen.Pullers != 200 || cfg.Scen.Changes != 10 {
		t.Fatalf("pull defaults: %+v", cfg)
	}
	cfg, err = ParseConfig([]string{"--scenario", "touch", "--url", "http://127.0.0.1:9"}, io.Discard)
	if err != nil || cfg.Canvases != 100_000 {
		t.Fatalf("touch: %v %d", err, cfg.Canvases)
	}
	cfg, err = ParseConfig([]string{"fanout", "--canvases", "500", "--url", "http://127.0.0.1:9"}, io.Discard)
	if err != nil || cfg.Canvases != 500 || cfg.Scen.Subscribers != 5000 {
		t.Fatalf("fanout: %v %+v", err, cfg)
	}
	if _, err := ParseConfig([]string{"fanout", "--subscribers", "10", "--canvases", "500", "--url", "http://127.0.0.1:9"}, io.Discard); err == nil {
		t.Fatal("fewer subscribers than canvases accepted")
	}
	if _, err := ParseConfig([]string{"--scenario", "nope", "--url", "http://127.0.0.1:9"}, io.Discard); err == nil {
		t.Fatal("unknown scenario accepted")
	}
	if _, err := ParseConfig([]string{"touch", "--touch-op", "x", "--url", "http://127.0.0.1:9"}, io.Discard); err == nil {
		t.Fatal("bad touch-op accepted")
	}
	cfg, err = ParseConfig([]string{"--url", "http://127.0.0.1:9"}, io.Discard)
	if err != nil || cfg.Scenario != "load" || cfg.Nodes != 50 || cfg.Canvases != 16 {
		t.Fatalf("load defaults changed: %v %+v", err, cfg)
	}
	if !hasServerFlag([]string{"--idle-timeout=1s"}, "idle-timeout") || !hasServerFlag([]string{"-idle-timeout", "1s"}, "idle-timeout") || hasServerFlag([]string{"--idle-timeouts"}, "idle-timeout") {
		t.Fatal("hasServerFlag")
	}
}

func TestWriteScenario(t *testing.T) {
	r := &ScenarioReport{Title: "scenario x", Params: "p=1"}
	r.add(check("a", "1 ms", "<= 5 ms", true), check("b", "9", "<= 5", false), info("c", "3"))
	r.note("hello %d", 1)
	var buf bytes.Buffer
	writeScenario(&buf, r)
	out := buf.String()
	for _, want := range []string{"targets met: 1 of 2", "not met", "note: hello 1", "<= 5 ms"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := writeScenarioCSV(&buf, r); err != nil || strings.Count(buf.String(), "\n") != 4 {
		t.Fatalf("csv: %v\n%s", err, buf.String())
	}
}

func TestRaiseNoFile(t *testing.T) {
	n, err := raiseNoFile()
	if err != nil || n == 0 {
		t.Fatalf("raiseNoFile: %d %v", n, err)
	}
}
