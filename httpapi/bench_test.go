package httpapi

import (
	"fmt"
	"testing"

	"github.com/canvasd/canvasd/canvas"
)

// BenchmarkEncodeInitialPatch encodes the full patch of a 10,000-node
// canvas: the work an initial pull does once per version.
func BenchmarkEncodeInitialPatch(b *testing.B) {
	changes := make([]canvas.Change, 10000)
	for i := range changes {
		id := fmt.Sprintf("n%d", i)
		changes[i] = canvas.Change{Kind: canvas.ChangeNode, ID: id,
			Node: canvas.Node{ID: id, Kind: "note", X: float64(i), Y: float64(i % 100), W: 200, H: 120, Title: "a title"}}
	}
	b.ReportAllocs()
	for b.Loop() {
		out := encodePatch(true, changes)
		b.SetBytes(int64(len(out)))
	}
}
