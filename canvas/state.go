package canvas

import (
	"slices"
	"strconv"
)

// State is the live content of one canvas in memory: its meta, live nodes and
// live edges, with the adjacency needed for the acyclic check. It is not safe
// for concurrent use; one canvas actor owns it.
type State struct {
	meta Meta
	// slots holds every node id that is live or that a live edge touches.
	// An edge may touch a missing node only through Load, but its adjacency
	// must still be kept so that removing it later is exact.
	slots  map[string]*slot
	nnodes int
	// bytes is the content of the live nodes and edges, as NodeBytes and
	// EdgeBytes count it: what the byte budget bounds.
	bytes int64
	edges map[string]Edge
	// pairs counts live edges per from→to; a count rather than a set because
	// Load may bring in duplicates, and deleting one must not forget the
	// other.
	pairs map[pair]int

	// Scratch of the acyclic check, kept so the hot path does not allocate:
	// a slot is visited in the current search when slot.mark == gen.
	gen   uint32
	stack []*slot
}

type slot struct {
	node Node
	live bool
	// out maps the ids of live edges leaving this node to their targets, so
	// the acyclic search follows pointers instead of two map lookups an edge.
	out  map[string]*slot
	in   map[string]struct{} // ids of live edges entering this node
	mark uint32
}

type pair struct{ from, to string }

// NewState returns an empty canvas.
func NewState(meta Meta) *State {
	return &State{
		meta:  meta,
		slots: make(map[string]*slot),
		edges: make(map[string]Edge),
		pairs: make(map[pair]int),
	}
}

func (s *State) slot(id string) *slot {
	sl := s.slots[id]
	if sl == nil {
		sl = &slot{}
		s.slots[id] = sl
	}
	return sl
}

// gc drops a slot that no longer carries anything.
func (s *State) gc(id string, sl *slot) {
	if !sl.live && len(sl.out) == 0 && len(sl.in) == 0 {
		delete(s.slots, id)
	}
}

func (s *State) liveNode(id string) *slot {
	if sl := s.slots[id]; sl != nil && sl.live {
		return sl
	}
	return nil
}

func (s *State) putNode(n Node) {
	sl := s.slot(n.ID)
	if !sl.live {
		sl.live = true
		s.nnodes++
	} else {
		s.bytes -= NodeBytes(sl.node)
	}
	sl.node = n
	s.bytes += NodeBytes(n)
}

func (s *State) removeNode(id string) {
	sl := s.slots[id]
	if sl == nil || !sl.live {
		return
	}
	sl.live = false
	s.bytes -= NodeBytes(sl.node)
	sl.node = Node{}
	s.nnodes--
	s.gc(id, sl)
}

func (s *State) putEdge(e Edge) {
	if _, ok := s.edges[e.ID]; ok {
		s.removeEdge(e.ID)
	}
	s.edges[e.ID] = e
	s.bytes += EdgeBytes(e)
	from, to := s.slot(e.From), s.slot(e.To)
	if from.out == nil {
		from.out = make(map[string]*slot, 1)
	}
	from.out[e.ID] = to
	if to.in == nil {
		to.in = make(map[string]struct{}, 1)
	}
	to.in[e.ID] = struct{}{}
	s.pairs[pair{e.From, e.To}]++
}

func (s *State) removeEdge(id string) {
	e, ok := s.edges[id]
	if !ok {
		return
	}
	delete(s.edges, id)
	s.bytes -= EdgeBytes(e)
	if from := s.slots[e.From]; from != nil {
		delete(from.out, id)
		s.gc(e.From, from)
	}
	if to := s.slots[e.To]; to != nil {
		delete(to.in, id)
		s.gc(e.To, to)
	}
	p := pair{e.From, e.To}
	if s.pairs[p] <= 1 {
		delete(s.pairs, p)
	} else {
		s.pairs[p]--
	}
}

func nodeID(c Change) string {
	if c.ID != "" {
		return c.ID
	}
	return c.Node.ID
}

func edgeID(c Change) string {
	if c.ID != "" {
		return c.ID
	}
	return c.Edge.ID
}

// Load applies a stored row to the state without checking rules (used when
// loading a canvas from the database, or catching up on rows another
// instance wrote). A deleted change removes the node or edge if present.
func (s *State) Load(c Change) {
	switch c.Kind {
	case ChangeNode:
		id := nodeID(c)
		if c.Deleted {
			s.removeNode(id)
			return
		}
		n := c.Node
		n.ID = id
		s.putNode(n)
	case ChangeEdge:
		id := edgeID(c)
		if c.Deleted {
			s.removeEdge(id)
			return
		}
		e := c.Edge
		e.ID = id
		s.putEdge(e)
	case ChangeCanvas:
		s.meta.Title = c.Title
	}
}

// Apply checks op against the rules and the current state and, if it holds,
// applies it and appends the rows it writes to out. On error (*RuleError)
// the state is unchanged and out is returned as it was.
func (s *State) Apply(op Op, lim Limits, out []Change) ([]Change, error) {
	switch op := op.(type) {
	case CreateNode:
		return s.createNode(op, lim, out)
	case *CreateNode:
		return s.createNode(*op, lim, out)
	case UpdateNode:
		return s.updateNode(op, lim, out)
	case *UpdateNode:
		return s.updateNode(*op, lim, out)
	case MoveNode:
		return s.moveNode(op, out)
	case *MoveNode:
		return s.moveNode(*op, out)
	case DeleteNode:
		return s.deleteNode(op.ID, out), nil
	case *DeleteNode:
		return s.deleteNode(op.ID, out), nil
	case CreateEdge:
		return s.createEdge(op.Edge, lim, out)
	case *CreateEdge:
		return s.createEdge(op.Edge, lim, out)
	case DeleteEdge:
		return s.deleteEdge(op.ID, out), nil
	case *DeleteEdge:
		return s.deleteEdge(op.ID, out), nil
	case UpdateCanvas:
		return s.updateCanvas(op.Title, out), nil
	case *UpdateCanvas:
		return s.updateCanvas(op.Title, out), nil
	}
	return out, &RuleError{Mutator: MutatorName(op), Reason: "unknown mutator"}
}

func ruleErr(mutator, reason string) error { return &RuleError{Mutator: mutator, Reason: reason} }

func (s *State) createNode(op CreateNode, lim Limits, out []Change) ([]Change, error) {
	n := op.Node
	if s.liveNode(n.ID) != nil {
		return out, ruleErr(MutCreateNode, "node "+n.ID+" already exists")
	}
	if s.nnodes >= lim.MaxNodes {
		return out, ruleErr(MutCreateNode, "canvas has too many nodes")
	}
	if s.overBudget(NodeBytes(n), lim) {
		return out, ruleErr(MutCreateNode, overBudget(lim))
	}
	s.putNode(n)
	return append(out, Change{Kind: ChangeNode, ID: n.ID, Node: n}), nil
}

func (s *State) updateNode(op UpdateNode, lim Limits, out []Change) ([]Change, error) {
	sl := s.liveNode(op.ID)
	if sl == nil {
		return out, ruleErr(MutUpdateNode, "node "+op.ID+" does not exist")
	}
	n := &sl.node
	if lim.MaxBytes > 0 && (op.Title != nil || op.Body != nil || op.Kind != nil) {
		next := *n
		if op.Kind != nil {
			next.Kind = *op.Kind
		}
		if op.Title != nil {
			next.Title = *op.Title
		}
		if op.Body != nil {
			next.Body = *op.Body
		}
		// Only growth is refused: a canvas over its budget (a lowered
		// budget, rows loaded from the store) can still shrink.
		if grow := NodeBytes(next) - NodeBytes(*n); grow > 0 && s.overBudget(grow, lim) {
			return out, ruleErr(MutUpdateNode, overBudget(lim))
		}
	}
	before := NodeBytes(*n)
	defer func() { s.bytes += NodeBytes(*n) - before }()
	if op.Kind != nil {
		n.Kind = *op.Kind
	}
	if op.Title != nil {
		n.Title = *op.Title
	}
	if op.Body != nil {
		n.Body = *op.Body
	}
	if op.X != nil {
		n.X = *op.X
	}
	if op.Y != nil {
		n.Y = *op.Y
	}
	if op.W != nil {
		n.W = *op.W
	}
	if op.H != nil {
		n.H = *op.H
	}
	return append(out, Change{Kind: ChangeNode, ID: n.ID, Node: *n}), nil
}

func (s *State) moveNode(op MoveNode, out []Change) ([]Change, error) {
	sl := s.liveNode(op.ID)
	if sl == nil {
		return out, ruleErr(MutMoveNode, "node "+op.ID+" does not exist")
	}
	sl.node.X, sl.node.Y = op.X, op.Y
	return append(out, Change{Kind: ChangeNode, ID: op.ID, Node: sl.node}), nil
}

func (s *State) deleteNode(id string, out []Change) []Change {
	sl := s.liveNode(id)
	if sl == nil {
		// Deleting twice (two clients, or a replay) is not a mistake.
		return out
	}
	// Sorted so that the rows, and so the patches, do not depend on map order.
	ids := make([]string, 0, len(sl.out)+len(sl.in))
	for eid := range sl.out {
		ids = append(ids, eid)
	}
	for eid := range sl.in {
		if _, dup := sl.out[eid]; !dup { // a self-loop, only via Load
			ids = append(ids, eid)
		}
	}
	slices.Sort(ids)
	for _, eid := range ids {
		s.removeEdge(eid)
		out = append(out, Change{Kind: ChangeEdge, ID: eid, Deleted: true})
	}
	s.removeNode(id)
	return append(out, Change{Kind: ChangeNode, ID: id, Deleted: true})
}

func (s *State) createEdge(e Edge, lim Limits, out []Change) ([]Change, error) {
	if _, ok := s.edges[e.ID]; ok {
		return out, ruleErr(MutCreateEdge, "edge "+e.ID+" already exists")
	}
	if s.liveNode(e.From) == nil {
		return out, ruleErr(MutCreateEdge, "node "+e.From+" does not exist")
	}
	to := s.liveNode(e.To)
	if to == nil {
		return out, ruleErr(MutCreateEdge, "node "+e.To+" does not exist")
	}
	if e.From == e.To {
		return out, ruleErr(MutCreateEdge, "edge would connect a node to itself")
	}
	if s.pairs[pair{e.From, e.To}] > 0 {
		return out, ruleErr(MutCreateEdge, "an edge from "+e.From+" to "+e.To+" already exists")
	}
	if len(s.edges) >= lim.MaxEdges {
		return out, ruleErr(MutCreateEdge, "canvas has too many edges")
	}
	if s.reaches(to, e.From) {
		return out, ruleErr(MutCreateEdge, "edge would close a cycle")
	}
	if s.overBudget(EdgeBytes(e), lim) {
		return out, ruleErr(MutCreateEdge, overBudget(lim))
	}
	s.putEdge(e)
	return append(out, Change{Kind: ChangeEdge, ID: e.ID, Edge: e}), nil
}

// reaches reports whether target can be reached from start along live
// edges. Iterative so a long chain cannot blow the goroutine stack.
func (s *State) reaches(start *slot, target string) bool {
	s.gen++
	if s.gen == 0 {
		// Wrapped: old marks could collide with the new generation.
		for _, sl := range s.slots {
			sl.mark = 0
		}
		s.gen = 1
	}
	goal := s.slots[target]
	stack := append(s.stack[:0], start)
	start.mark = s.gen
	found := false
	high := len(stack)
	for len(stack) > 0 && !found {
		sl := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, next := range sl.out {
			if next == goal {
				found = true
				break
			}
			if next.mark != s.gen {
				next.mark = s.gen
				stack = append(stack, next)
				high = max(high, len(stack))
			}
		}
	}
	clear(stack[:high]) // do not pin slots that may be deleted later
	s.stack = stack[:0]
	return found
}

func (s *State) deleteEdge(id string, out []Change) []Change {
	if _, ok := s.edges[id]; !ok {
		return out
	}
	s.removeEdge(id)
	return append(out, Change{Kind: ChangeEdge, ID: id, Deleted: true})
}

func (s *State) updateCanvas(title string, out []Change) []Change {
	s.meta.Title = title
	return append(out, Change{Kind: ChangeCanvas, ID: s.meta.ID, Title: title})
}

// Meta returns the canvas meta.
func (s *State) Meta() Meta { return s.meta }

// Node returns a live node.
func (s *State) Node(id string) (Node, bool) {
	if sl := s.liveNode(id); sl != nil {
		return sl.node, true
	}
	return Node{}, false
}

// Edge returns a live edge.
func (s *State) Edge(id string) (Edge, bool) {
	e, ok := s.edges[id]
	return e, ok
}

// Bytes returns the content of the live nodes and edges, as the byte
// budget counts it.
func (s *State) Bytes() int64 { return s.bytes }

// overBudget reports whether growing the canvas by grow bytes passes its
// byte budget.
func (s *State) overBudget(grow int64, lim Limits) bool {
	return lim.MaxBytes > 0 && s.bytes+grow > lim.MaxBytes
}

func overBudget(lim Limits) string {
	return "canvas would pass its byte budget of " + strconv.FormatInt(lim.MaxBytes, 10) + " bytes"
}

// Len returns the number of live nodes and edges.
func (s *State) Len() (nodes, edges int) { return s.nnodes, len(s.edges) }
