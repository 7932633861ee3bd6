package canvas

import (
	"encoding/json"
	"math"
	"slices"
)

// ClearOp is the patch op that empties the client's key space, sent first
// when a pull cannot be answered as a diff.
func ClearOp() PatchOp { return PatchOp{Op: "clear"} }

// PatchOp returns the Replicache patch op that writes c.
func (c Change) PatchOp() PatchOp {
	switch c.Kind {
	case ChangeNode:
		key := NodeKey(nodeID(c))
		if c.Deleted {
			return PatchOp{Op: "del", Key: key}
		}
		n := c.Node
		n.ID = nodeID(c)
		return PatchOp{Op: "put", Key: key, Value: marshalNode(n)}
	case ChangeEdge:
		key := EdgeKey(edgeID(c))
		if c.Deleted {
			return PatchOp{Op: "del", Key: key}
		}
		e := c.Edge
		e.ID = edgeID(c)
		return PatchOp{Op: "put", Key: key, Value: marshal(e)}
	default: // ChangeCanvas: the canvas itself is never deleted through a patch.
		return PatchOp{Op: "put", Key: KeyCanvas, Value: marshal(Meta{ID: c.ID, Title: c.Title})}
	}
}

func marshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings and ids here, which always marshal.
		panic("canvas: marshal: " + err.Error())
	}
	return b
}

// marshalNode zeroes non-finite numbers first: Decode never lets one in, but
// a row loaded from elsewhere might carry one, and json.Marshal refuses them.
// A wrong coordinate beats a pull that fails forever.
func marshalNode(n Node) json.RawMessage {
	for _, f := range []*float64{&n.X, &n.Y, &n.W, &n.H} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
	return marshal(n)
}

// Snapshot appends a put Change for the meta and for every live node and edge,
// in no particular order.
func (s *State) Snapshot(out []Change) []Change {
	out = slices.Grow(out, 1+s.nnodes+len(s.edges))
	out = append(out, Change{Kind: ChangeCanvas, ID: s.meta.ID, Title: s.meta.Title})
	for id, sl := range s.slots {
		if sl.live {
			out = append(out, Change{Kind: ChangeNode, ID: id, Node: sl.node})
		}
	}
	for id, e := range s.edges {
		out = append(out, Change{Kind: ChangeEdge, ID: id, Edge: e})
	}
	return out
}
