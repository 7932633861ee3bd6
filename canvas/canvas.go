// Package canvas is the domain of canvasd: the Replicache key space of one
// canvas, its mutators and their rules, and patch building. It knows nothing
// of HTTP, actors or SQL.
package canvas

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Keys of the Replicache key space of one canvas.
const (
	KeyCanvas  = "canvas"
	nodePrefix = "node/"
	edgePrefix = "edge/"
)

// NodeKey is the Replicache key of a node.
func NodeKey(id string) string { return nodePrefix + id }

// EdgeKey is the Replicache key of an edge.
func EdgeKey(id string) string { return edgePrefix + id }

// ErrNotFound is returned when a canvas does not exist.
var ErrNotFound = errors.New("canvas not found")

// Meta is the value under KeyCanvas.
type Meta struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Node is the value under node/<id>.
type Node struct {
	ID    string  `json:"id"`
	Kind  string  `json:"kind"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Title string  `json:"title"`
	Body  string  `json:"body"`
}

// Edge is the value under edge/<id>.
type Edge struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
}

// RuleError is a permanent mutation error: the mutation breaks a rule, names
// an unknown mutator or carries bad arguments. It is skipped and its client's
// lastMutationID still advances.
type RuleError struct {
	Mutator string
	Reason  string
}

func (e *RuleError) Error() string {
	if e.Mutator == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Mutator, e.Reason)
}

// IsRuleError reports whether err is (or wraps) a *RuleError.
func IsRuleError(err error) bool {
	var re *RuleError
	return errors.As(err, &re)
}

// ValidID reports whether s matches ^[A-Za-z0-9_-]{1,64}$, the pattern of
// every id (canvas, node, edge, client, client group).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// PatchOp is one operation of a Replicache pull response patch.
type PatchOp struct {
	Op    string          `json:"op"`
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}
