// Package client_test proves the TypeScript client package's mutators
// (canvas/client) and the server's domain (package canvas) make the same
// decisions and reach the same state.
package client_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/canvas"
)

type diffOp struct {
	Name string `json:"name"`
	Args string `json:"args"` // JSON text, parsed by each side itself
}

type jsLimits struct {
	MaxTitle int     `json:"maxTitle"`
	MaxBody  int     `json:"maxBody"`
	MaxCoord float64 `json:"maxCoord"`
	MaxSize  float64 `json:"maxSize"`
	MaxNodes int     `json:"maxNodes"`
	MaxEdges int     `json:"maxEdges"`
}

type diffSeq struct {
	Seed   uint64        `json:"-"`
	Lim    canvas.Limits `json:"-"`
	Limits *jsLimits     `json:"limits"`
	Ops    []diffOp      `json:"ops"`
}

type diffResult struct {
	Applied []bool                     `json:"applied"`
	State   map[string]json.RawMessage `json:"state"`
}

// TestMutatorsMatchServer generates seeded mutation sequences — valid ones
// that grow a graph, and ones that break every rule: bad ids, kinds,
// numbers, sizes, titles and bodies at and past the limits, NUL and lone
// surrogates, null and missing fields, keys that match only
// case-insensitively, cycles, duplicates, deletes of missing things, unknown
// mutators — applies each with canvas.Decode + State.Apply and with the
// client package's mutators in Node, and requires the same decision for
// every mutation and the same key-value state after every sequence.
func TestMutatorsMatchServer(t *testing.T) {
	t.Parallel()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not on PATH (the client package is checked with Node.js 20 or later): %v", err)
	}
	const seeds = 240
	base := uint64(20261124)
	if s := os.Getenv("CANVASD_DIFF_SEED"); s != "" {
		base, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	meta := canvas.Meta{ID: "cv1", Title: "Differential"}
	seqs := make([]diffSeq, seeds)
	for i := range seqs {
		seqs[i] = generate(base+uint64(i), 80)
	}

	in, err := json.Marshal(map[string]any{"canvas": meta, "sequences": seqs})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "sequences.json")
	require.NoError(t, os.WriteFile(path, in, 0o600))
	cmd := exec.Command(nodeBin, filepath.Join("test", "differential.mjs"), path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node test/differential.mjs:\n%s", stderr.String())
	var results []diffResult
	require.NoError(t, json.Unmarshal(out, &results))
	require.Len(t, results, len(seqs))

	applied, refused := 0, 0
	for i, seq := range seqs {
		s := canvas.NewState(meta)
		res := results[i]
		require.Len(t, res.Applied, len(seq.Ops))
		for j, op := range seq.Ops {
			ok := true
			dec, err := canvas.Decode(op.Name, json.RawMessage(op.Args), seq.Lim)
			if err == nil {
				_, err = s.Apply(dec, seq.Lim, nil)
			}
			if err != nil {
				require.True(t, canvas.IsRuleError(err), "seed %d op %d: %v", seq.Seed, j, err)
				ok = false
				refused++
			} else {
				applied++
			}
			if ok != res.Applied[j] {
				t.Fatalf("seed %d (CANVASD_DIFF_SEED=%d reproduces it first) op %d %s %s: server applied=%v (%v), client applied=%v",
					seq.Seed, seq.Seed, j, op.Name, op.Args, ok, err, res.Applied[j])
			}
		}
		want := map[string]any{}
		for _, c := range s.Snapshot(nil) {
			p := c.PatchOp()
			var v any
			require.NoError(t, json.Unmarshal(p.Value, &v))
			want[p.Key] = v
		}
		got := map[string]any{}
		for k, raw := range res.State {
			var v any
			require.NoError(t, json.Unmarshal(raw, &v))
			got[k] = v
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("seed %d: states differ\nserver: %v\nclient: %v", seq.Seed, want, got)
		}
	}
	t.Logf("%d sequences, %d mutations applied and %d refused alike", len(seqs), applied, refused)
	require.Greater(t, applied, len(seqs)*10, "too few valid mutations to grow graphs")
	require.Greater(t, refused, len(seqs)*10, "too few rule-breaking mutations")
}

// gen builds the JSON text of one mutation's args, by hand, so that it can
// hold what a marshaller would never write.
type gen struct {
	r   *rand.Rand
	lim canvas.Limits
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

var ids = []string{"a", "b", "c", "d", "e", "f", "g"}

func (g *gen) validID() string { return strconv.Quote(ids[g.r.IntN(len(ids))]) }

func (g *gen) id() string {
	if g.chance(0.9) {
		return g.validID()
	}
	return g.pick(`""`, `"a b"`, `"ü"`, `"`+strings.Repeat("x", 65)+`"`, `"`+strings.Repeat("y", 64)+`"`,
		`1`, `null`, `true`, `["a"]`, `"a\u0000"`, `"\ud800"`)
}

func (g *gen) kind() string {
	if g.chance(0.85) {
		return g.pick(`"note"`, `"k"`, `"task_1"`, `"a-b"`)
	}
	return g.pick(`"Note"`, `""`, `"`+strings.Repeat("k", 33)+`"`, `"`+strings.Repeat("k", 32)+`"`, `null`, `5`, `"nöte"`)
}

func (g *gen) coord() string {
	if g.chance(0.8) {
		return strconv.FormatFloat(float64(g.r.IntN(2001)-1000)/4, 'g', -1, 64)
	}
	m := g.lim.MaxCoord
	return g.pick(fmtF(m), fmtF(-m), fmtF(m*1.0000001), fmtF(-m*2), `-0`, `1e400`, `-1e400`, `1e-400`,
		`0.1e1`, `"5"`, `null`, `true`, `{}`, `12345678901234567890`)
}

func (g *gen) size() string {
	if g.chance(0.8) {
		return strconv.Itoa(1 + g.r.IntN(300))
	}
	m := g.lim.MaxSize
	return g.pick(`0`, `-1`, `-0`, `1e-300`, fmtF(m), fmtF(m+1), `1e400`, `null`, `"10"`)
}

func fmtF(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (g *gen) title() string {
	if g.chance(0.75) {
		return g.pick(`""`, `"Idea"`, `"Plan ü"`, `"<b>&amp;</b>"`, `"tab\there"`)
	}
	n := g.lim.MaxTitle
	return g.pick(
		strconv.Quote(strings.Repeat("t", n)), strconv.Quote(strings.Repeat("t", n+1)),
		strconv.Quote(strings.Repeat("ü", n)), strconv.Quote(strings.Repeat("ü", n+1)),
		strconv.Quote(strings.Repeat("😀", n)), strconv.Quote(strings.Repeat("😀", n+1)),
		`"a\u0000b"`, `"\ud800"`, `"x\udc00y"`, `"\ud83d\ude00"`, `null`, `7`,
		// A lone surrogate counts as one character, U+FFFD once decoded.
		`"`+strings.Repeat("t", n-1)+`\ud800"`, `"`+strings.Repeat("t", n)+`\ud800"`,
	)
}

func (g *gen) body() string {
	if g.chance(0.75) {
		return g.pick(`""`, `"Some text"`, `"line\nline"`, `"😀 ü"`)
	}
	n := g.lim.MaxBody
	return g.pick(
		strconv.Quote(strings.Repeat("b", n)), strconv.Quote(strings.Repeat("b", n+1)),
		// 3 bytes each: at and past the byte limit with fewer characters.
		strconv.Quote(strings.Repeat("€", n/3)), strconv.Quote(strings.Repeat("€", n/3+1)),
		`"`+strings.Repeat("b", n-3)+`\udfff"`, `"`+strings.Repeat("b", n-2)+`\udfff"`,
		`"a\u0000"`, `null`, `[]`,
	)
}

// field names that differ from the real ones only in case: the server
// matches names exactly, so both sides must refuse or ignore them alike.
func (g *gen) key(name string) string {
	if !g.chance(0.08) {
		return name
	}
	switch {
	case name == "kind" && g.chance(0.5):
		return "\u212aind" // KELVIN SIGN folds to K
	case name == "id":
		return g.pick("ID", "Id", "iD")
	default:
		return strings.ToUpper(name)
	}
}

// object joins key/value pairs; a value "" leaves the field out.
func (g *gen) object(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.Quote(g.key(kv[i])))
		b.WriteByte(':')
		b.WriteString(kv[i+1])
	}
	if g.chance(0.05) {
		if !first {
			b.WriteByte(',')
		}
		b.WriteString(`"extra":[1,{"x":2}]`)
	}
	b.WriteByte('}')
	return b.String()
}

// maybe leaves a field out now and then, or makes it null.
func (g *gen) maybe(v string, omit float64) string {
	switch {
	case g.chance(omit):
		return ""
	case g.chance(0.02):
		return "null"
	}
	return v
}

func (g *gen) op() diffOp {
	if g.chance(0.03) {
		// Not an object, or the same field twice (the last one counts).
		name := g.pick(canvas.MutCreateNode, canvas.MutMoveNode, canvas.MutDeleteNode, canvas.MutCreateEdge, canvas.MutUpdateCanvas)
		return diffOp{name, g.pick(`[]`, `null`, `"x"`, `1`, `{"id":"a","ID":"zz z"}`, `{"id":"a b","Id":"a","x":1,"y":2,"kind":"k"}`,
			`{"title":"one","TITLE":"two"}`)}
	}
	if g.chance(0.01) {
		return diffOp{"frobnicate", `{"id":"a"}`}
	}
	switch n := g.r.IntN(100); {
	case n < 30:
		return diffOp{canvas.MutCreateNode, g.object("id", g.maybe(g.id(), 0.02), "kind", g.maybe(g.kind(), 0.03),
			"x", g.maybe(g.coord(), 0.03), "y", g.maybe(g.coord(), 0.03),
			"w", g.maybe(g.size(), 0.6), "h", g.maybe(g.size(), 0.6),
			"title", g.maybe(g.title(), 0.5), "body", g.maybe(g.body(), 0.6))}
	case n < 40:
		return diffOp{canvas.MutUpdateNode, g.object("id", g.maybe(g.id(), 0.02), "kind", g.maybe(g.kind(), 0.8),
			"x", g.maybe(g.coord(), 0.7), "y", g.maybe(g.coord(), 0.7), "w", g.maybe(g.size(), 0.8), "h", g.maybe(g.size(), 0.8),
			"title", g.maybe(g.title(), 0.5), "body", g.maybe(g.body(), 0.6))}
	case n < 55:
		return diffOp{canvas.MutMoveNode, g.object("id", g.maybe(g.id(), 0.02), "x", g.maybe(g.coord(), 0.02), "y", g.maybe(g.coord(), 0.02))}
	case n < 63:
		return diffOp{canvas.MutDeleteNode, g.object("id", g.maybe(g.id(), 0.02))}
	case n < 88:
		return diffOp{canvas.MutCreateEdge, g.object("id", g.maybe(g.id(), 0.02), "from", g.maybe(g.id(), 0.02), "to", g.maybe(g.id(), 0.02))}
	case n < 95:
		return diffOp{canvas.MutDeleteEdge, g.object("id", g.maybe(g.id(), 0.02))}
	default:
		return diffOp{canvas.MutUpdateCanvas, g.object("title", g.maybe(g.title(), 0.05))}
	}
}

// generate makes one sequence; three seeds in four run under small limits
// so that the node and edge counts, sizes and lengths hit their bounds.
func generate(seed uint64, n int) diffSeq {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), lim: canvas.DefaultLimits()}
	seq := diffSeq{Seed: seed}
	if seed%4 != 0 {
		g.lim = canvas.Limits{MaxTitle: 8, MaxBody: 16, MaxCoord: 1000, MaxSize: 250, MaxNodes: 5, MaxEdges: 4}
	}
	seq.Lim = g.lim
	seq.Limits = &jsLimits{g.lim.MaxTitle, g.lim.MaxBody, g.lim.MaxCoord, g.lim.MaxSize, g.lim.MaxNodes, g.lim.MaxEdges}
	for range n {
		seq.Ops = append(seq.Ops, g.op())
	}
	return seq
}

func (s diffSeq) String() string { return fmt.Sprintf("seed %d, %d ops", s.Seed, len(s.Ops)) }
