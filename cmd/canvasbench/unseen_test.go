package main

import (
	"testing"
	"time"
)

// A push is unseen only if its canvas's observer ended behind the canvas's
// final version: a push without a tag, or whose tag a later push
// overwrote, is not unseen when the observer reached the final state.
func TestUnseenComparesObserverWithFinalVersion(t *testing.T) {
	l := &loadRun{res: newResult(Config{}, "test")}
	caughtUp := &canvasState{final: 7}
	caughtUp.seenOrder.Store(7)
	behind := &canvasState{final: 9}
	behind.seenOrder.Store(8)
	l.canvases = []*canvasState{caughtUp, behind}
	now := time.Now()
	for _, cv := range l.canvases {
		cv.track.init(l)
		// A deleteNode carries no tag; the move's tag was overwritten by
		// a later move the observer saw before this ack.
		for _, rec := range []*pushRec{{}, {tags: []int64{1}}} {
			cv.track.register(rec, now)
			cv.track.acked(rec, now, true)
		}
	}
	unseen, stale := l.unseen()
	if stale != 1 || unseen != 2 {
		t.Fatalf("stale %d unseen %d, want 1 and 2 (the observer behind only)", stale, unseen)
	}
	if n := l.behind(); n != 1 {
		t.Fatalf("behind %d, want 1", n)
	}
	behind.seenOrder.Store(9)
	if unseen, stale := l.unseen(); stale != 0 || unseen != 0 {
		t.Fatalf("stale %d unseen %d once the observer caught up", stale, unseen)
	}
	behind.final = -1 // the final version could not be read
	if _, stale := l.unseen(); stale != 1 {
		t.Fatal("an unknown final version must not count as caught up")
	}
}
