package canvas

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what a mutation may write. Zero values are not valid; start
// from DefaultLimits.
type Limits struct {
	MaxTitle int     // runes in a node or canvas title
	MaxBody  int     // bytes in a node body
	MaxCoord float64 // |x|, |y|
	MaxSize  float64 // w, h (exclusive lower bound 0)
	MaxNodes int     // live nodes per canvas
	MaxEdges int     // live edges per canvas
	// MaxBytes is the per-canvas byte budget: the content of the live
	// nodes and edges as ContentBytes counts it (close to the size of the
	// canvas's initial pull). A mutation that would grow a canvas past it
	// is refused (a permanent error). 0: no budget.
	MaxBytes int64
}

// DefaultLimits are the limits of DESIGN.md.
func DefaultLimits() Limits {
	return Limits{MaxTitle: 200, MaxBody: 64 << 10, MaxCoord: 1e7, MaxSize: 1e5, MaxNodes: 50_000, MaxEdges: 100_000,
		MaxBytes: DefaultMaxBytes}
}

// DefaultMaxBytes is the default per-canvas byte budget. The node and edge
// counts alone fill about 14 MiB of it (50,000 small nodes, 100,000
// edges); past that, text. See the README (Security) for the memory a full
// canvas takes.
const DefaultMaxBytes = 16 << 20

// Per-item overheads of ContentBytes: the key, the numbers and the JSON
// punctuation of a node or edge in a patch, roughly.
const (
	nodeOverhead = 96
	edgeOverhead = 48
)

// NodeBytes is what a node counts against the byte budget.
func NodeBytes(n Node) int64 {
	return int64(nodeOverhead + 2*len(n.ID) + len(n.Kind) + len(n.Title) + len(n.Body))
}

// EdgeBytes is what an edge counts against the byte budget.
func EdgeBytes(e Edge) int64 {
	return int64(edgeOverhead + 2*len(e.ID) + len(e.From) + len(e.To))
}

// MaxMutatorName bounds a mutator name; every known one is far shorter.
const MaxMutatorName = 64

// Mutator names, as sent by the client.
const (
	MutCreateNode   = "createNode"
	MutUpdateNode   = "updateNode"
	MutMoveNode     = "moveNode"
	MutDeleteNode   = "deleteNode"
	MutCreateEdge   = "createEdge"
	MutDeleteEdge   = "deleteEdge"
	MutUpdateCanvas = "updateCanvas"
)

// Defaults of createNode; the client uses the same so its optimistic value
// matches ours.
const (
	DefaultW = 200
	DefaultH = 120
)

// Op is a decoded, validated mutation, ready to apply to a State.
// The concrete types are CreateNode, UpdateNode, MoveNode, DeleteNode,
// CreateEdge, DeleteEdge and UpdateCanvas.
type Op interface{ mutator() string }

// CreateNode is the op of createNode.
type CreateNode struct{ Node Node }

// UpdateNode is the op of updateNode; nil fields are left as they are.
type UpdateNode struct {
	ID                string
	Kind, Title, Body *string
	X, Y, W, H        *float64
}

// MoveNode is the op of moveNode.
type MoveNode struct {
	ID   string
	X, Y float64
}

// DeleteNode is the op of deleteNode.
type DeleteNode struct{ ID string }

// CreateEdge is the op of createEdge.
type CreateEdge struct{ Edge Edge }

// DeleteEdge is the op of deleteEdge.
type DeleteEdge struct{ ID string }

// UpdateCanvas is the op of updateCanvas.
type UpdateCanvas struct{ Title string }

func (CreateNode) mutator() string   { return MutCreateNode }
func (UpdateNode) mutator() string   { return MutUpdateNode }
func (MoveNode) mutator() string     { return MutMoveNode }
func (DeleteNode) mutator() string   { return MutDeleteNode }
func (CreateEdge) mutator() string   { return MutCreateEdge }
func (DeleteEdge) mutator() string   { return MutDeleteEdge }
func (UpdateCanvas) mutator() string { return MutUpdateCanvas }

// MutatorName returns the mutator name of op ("" for nil).
func MutatorName(op Op) string {
	if op == nil {
		return ""
	}
	return op.mutator()
}

// The arg field types below record what they saw instead of failing, so that
// Decode can name the field in its RuleError (encoding/json errors from an
// Unmarshaler carry no field name) and can tell an explicit null from an
// absent field, which pointer fields cannot.

type jStr struct {
	set, null bool
	bad       string
	v         string
}

func (s *jStr) UnmarshalJSON(b []byte) error {
	// encoding/json has validated the whole document before calling us, so b
	// is exactly one well-formed JSON value.
	*s = jStr{set: true}
	switch {
	case b[0] == 'n':
		s.null = true
	case b[0] != '"':
		s.bad = "must be a string"
	case !utf8.Valid(b):
		// encoding/json would silently turn bad bytes into U+FFFD; we refuse
		// instead so the stored value is what the client sent.
		s.bad = "is not valid UTF-8"
	default:
		inner := b[1 : len(b)-1]
		if !hasByte(inner, '\\') {
			s.v = string(inner)
		} else if err := json.Unmarshal(b, &s.v); err != nil {
			s.bad = "is not a valid string"
		}
	}
	return nil
}

type jNum struct {
	set, null bool
	bad       string
	v         float64
}

func (n *jNum) UnmarshalJSON(b []byte) error {
	*n = jNum{set: true}
	switch c := b[0]; {
	case c == 'n':
		n.null = true
	case c != '-' && (c < '0' || c > '9'):
		n.bad = "must be a number"
	default:
		// A JSON number is a valid ParseFloat input; the only error left is
		// overflow of float64.
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			n.bad = "is out of range"
			return nil
		}
		n.v = f
	}
	return nil
}

func hasByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

type nodeArgs struct {
	ID    jStr `json:"id"`
	Kind  jStr `json:"kind"`
	Title jStr `json:"title"`
	Body  jStr `json:"body"`
	X     jNum `json:"x"`
	Y     jNum `json:"y"`
	W     jNum `json:"w"`
	H     jNum `json:"h"`
}

type moveArgs struct {
	ID jStr `json:"id"`
	X  jNum `json:"x"`
	Y  jNum `json:"y"`
}

type idArgs struct {
	ID jStr `json:"id"`
}

type edgeArgs struct {
	ID   jStr `json:"id"`
	From jStr `json:"from"`
	To   jStr `json:"to"`
}

type canvasArgs struct {
	Title jStr `json:"title"`
}

// Decode turns a mutator name and its JSON args into an Op, checking the
// shape and limits of the args. Errors are *RuleError.
func Decode(name string, args json.RawMessage, lim Limits) (Op, error) {
	d := decoder{name: name, lim: lim}
	switch name {
	case MutMoveNode:
		var a moveArgs
		if !d.unmarshal(args, &a) {
			return nil, d.err
		}
		op := MoveNode{ID: d.id("id", &a.ID), X: d.coord("x", &a.X), Y: d.coord("y", &a.Y)}
		return d.result(op)
	case MutCreateNode:
		var a nodeArgs
		if !d.unmarshal(args, &a) {
			return nil, d.err
		}
		n := Node{ID: d.id("id", &a.ID), Kind: d.kind(&a.Kind), X: d.coord("x", &a.X), Y: d.coord("y", &a.Y)}
		n.W, n.H = DefaultW, DefaultH
		if a.W.set {
			n.W = d.size("w", &a.W)
		} else {
			d.checkSize("w", n.W)
		}
		if a.H.set {
			n.H = d.size("h", &a.H)
		} else {
			d.checkSize("h", n.H)
		}
		if a.Title.set {
			n.Title = d.title(&a.Title)
		}
		if a.Body.set {
			n.Body = d.body(&a.Body)
		}
		return d.result(CreateNode{Node: n})
	case MutUpdateNode:
		var a nodeArgs
		if !d.unmarshal(args, &a) {
			return nil, d.err
		}
		op := UpdateNode{ID: d.id("id", &a.ID)}
		if a.Kind.set {
			op.Kind = ptr(d.kind(&a.Kind))
		}
		if a.Title.set {
			op.Title = ptr(d.title(&a.Title))
		}
		if a.Body.set {
			op.Body = ptr(d.body(&a.Body))
		}
		if a.X.set {
			op.X = ptr(d.coord("x", &a.X))
		}
		if a.Y.set {
			op.Y = ptr(d.coord("y", &a.Y))
		}
		if a.W.set {
			op.W = ptr(d.size("w", &a.W))
		}
		if a.H.set {
			op.H = ptr(d.size("h", &a.H))
		}
		return d.result(op)
	case MutDeleteNode, MutDeleteEdge:
		var a idArgs
		if !d.unmarshal(args, &a) {
			return nil, d.err
		}
		id := d.id("id", &a.ID)
		if name == MutDeleteNode {
			return d.result(DeleteNode{ID: id})
		}
		return d.result(DeleteEdge{ID: id})
	case MutCreateEdge:
		var a edgeArgs
		if !d.unmarshal(args, &a) {
			return nil, d.err
		}
		e := Edge{ID: d.id("id", &a.ID), From: d.id("from", &a.From), To: d.id("to", &a.To)}
		return d.result(CreateEdge{Edge: e})
	case MutUpdateCanvas:
		var a canvasArgs
		if !d.unmarshal(args, &a) {
			return nil, d.err
		}
		return d.result(UpdateCanvas{Title: d.title(&a.Title)})
	default:
		if len(name) > MaxMutatorName {
			// Not echoed: a name is logged, and a client chooses its length.
			return nil, &RuleError{Reason: "unknown mutator (name longer than " + strconv.Itoa(MaxMutatorName) + " bytes)"}
		}
		return nil, &RuleError{Mutator: name, Reason: "unknown mutator"}
	}
}

func ptr[T any](v T) *T { return &v }

// decoder keeps the first failure so the field checks can be written as a
// straight line of expressions.
type decoder struct {
	name string
	lim  Limits
	err  *RuleError
}

func (d *decoder) fail(reason string) {
	if d.err == nil {
		d.err = &RuleError{Mutator: d.name, Reason: reason}
	}
}

func (d *decoder) result(op Op) (Op, error) {
	if d.err != nil {
		return nil, d.err
	}
	return op, nil
}

func (d *decoder) unmarshal(args []byte, v any) bool {
	i := 0
	for i < len(args) && (args[i] == ' ' || args[i] == '\t' || args[i] == '\n' || args[i] == '\r') {
		i++
	}
	// Unmarshal accepts null into a struct as a no-op, and reports an array
	// as a type error; both are simply "not an object" here.
	if i == len(args) || args[i] != '{' {
		d.fail("args must be a JSON object")
		return false
	}
	// Strict like every body (duplicate or case-varied names refused), but
	// members the mutator does not know are ignored, as the client's
	// mutators ignore them.
	if err := DecodeEnvelope(args, v); err != nil {
		// Our field types never fail: a syntax error or a duplicate name.
		d.fail("args are not valid JSON: " + err.Error())
		return false
	}
	return true
}

// present reports whether a required field is there and usable, failing
// otherwise.
func (d *decoder) present(field string, set, null bool, bad string) bool {
	switch {
	case !set:
		d.fail(field + " is required")
	case null:
		d.fail(field + " must not be null")
	case bad != "":
		d.fail(field + " " + bad)
	default:
		return true
	}
	return false
}

func (d *decoder) str(field string, s *jStr) (string, bool) {
	if !d.present(field, s.set, s.null, s.bad) {
		return "", false
	}
	// PostgreSQL text cannot hold NUL; refusing it here keeps such a
	// mutation a permanent error instead of a failing transaction.
	if strings.IndexByte(s.v, 0) >= 0 {
		d.fail(field + " must not contain NUL characters")
		return "", false
	}
	return s.v, true
}

func (d *decoder) num(field string, n *jNum) (float64, bool) {
	if !d.present(field, n.set, n.null, n.bad) {
		return 0, false
	}
	return n.v, true
}

func (d *decoder) id(field string, s *jStr) string {
	v, ok := d.str(field, s)
	if ok && !ValidID(v) {
		d.fail(field + " must match ^[A-Za-z0-9_-]{1,64}$")
	}
	return v
}

func (d *decoder) kind(s *jStr) string {
	v, ok := d.str("kind", s)
	if ok && !validKind(v) {
		d.fail("kind must match ^[a-z0-9_-]{1,32}$")
	}
	return v
}

func validKind(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (d *decoder) title(s *jStr) string {
	v, ok := d.str("title", s)
	if ok && len(v) > d.lim.MaxTitle && utf8.RuneCountInString(v) > d.lim.MaxTitle {
		d.fail("title is longer than " + strconv.Itoa(d.lim.MaxTitle) + " characters")
	}
	return v
}

func (d *decoder) body(s *jStr) string {
	v, ok := d.str("body", s)
	if ok && len(v) > d.lim.MaxBody {
		d.fail("body is longer than " + strconv.Itoa(d.lim.MaxBody) + " bytes")
	}
	return v
}

func (d *decoder) coord(field string, n *jNum) float64 {
	v, ok := d.num(field, n)
	if ok && !(math.Abs(v) <= d.lim.MaxCoord) {
		d.fail(field + " must be within ±" + strconv.FormatFloat(d.lim.MaxCoord, 'g', -1, 64))
	}
	return v
}

func (d *decoder) size(field string, n *jNum) float64 {
	v, ok := d.num(field, n)
	if ok {
		d.checkSize(field, v)
	}
	return v
}

func (d *decoder) checkSize(field string, v float64) {
	if !(v > 0 && v <= d.lim.MaxSize) {
		d.fail(field + " must be > 0 and <= " + strconv.FormatFloat(d.lim.MaxSize, 'g', -1, 64))
	}
}

// ChangeKind says what a Change touches.
type ChangeKind uint8

const (
	ChangeNode ChangeKind = iota + 1
	ChangeEdge
	ChangeCanvas
)

// Change is one row written by a mutation: the new value of a node, edge or
// the canvas meta, or the deletion of a node or edge.
type Change struct {
	Kind    ChangeKind
	ID      string // node or edge id; the canvas id for ChangeCanvas
	Deleted bool
	Node    Node   // when Kind == ChangeNode && !Deleted
	Edge    Edge   // when Kind == ChangeEdge && !Deleted
	Title   string // when Kind == ChangeCanvas
	// Version is the canvas version that wrote the row, when read from
	// the store (0 for a change not yet committed).
	Version int64
}
