package canvas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Replicache protocol errors. They travel as HTTP 200 bodies because the
// client ignores the bodies of other statuses.
var (
	// ErrClientStateNotFound tells the client its state cannot be placed in
	// this canvas's history; it resets and pulls from scratch.
	ErrClientStateNotFound = errors.New("ClientStateNotFound")
)

// VersionError is VersionNotSupported for "push", "pull" or "schema".
type VersionError struct{ VersionType string }

func (e *VersionError) Error() string { return "VersionNotSupported: " + e.VersionType }

// BadRequestError is a malformed request envelope (HTTP 400).
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

func badRequest(format string, args ...any) error {
	return &BadRequestError{Reason: fmt.Sprintf(format, args...)}
}

// Mutation is one pending mutation of a PushRequestV1.
type Mutation struct {
	ID        int64           `json:"id"`
	ClientID  string          `json:"clientID"`
	Name      string          `json:"name"`
	Args      json.RawMessage `json:"args"`
	Timestamp float64         `json:"timestamp"`
}

// PushRequest is a Replicache PushRequestV1.
type PushRequest struct {
	ProfileID     string     `json:"profileID"`
	ClientGroupID string     `json:"clientGroupID"`
	PushVersion   int        `json:"pushVersion"`
	SchemaVersion string     `json:"schemaVersion"`
	Mutations     []Mutation `json:"mutations"`
}

// PullRequest is a Replicache PullRequestV1.
type PullRequest struct {
	ProfileID     string          `json:"profileID"`
	ClientGroupID string          `json:"clientGroupID"`
	Cookie        json.RawMessage `json:"cookie"`
	PullVersion   int             `json:"pullVersion"`
	SchemaVersion string          `json:"schemaVersion"`
}

// PullResponse is a Replicache PullResponseOKV1.
type PullResponse struct {
	Cookie                Cookie           `json:"cookie"`
	LastMutationIDChanges map[string]int64 `json:"lastMutationIDChanges"`
	Patch                 []PatchOp        `json:"patch"`
}

// Cookie is canvasd's pull cookie: the canvas version the client has seen,
// scoped to one canvas and one incarnation (epoch) of it.
type Cookie struct {
	Order  int64  `json:"order"`
	Canvas string `json:"canvas"`
	Epoch  string `json:"epoch"`
}

// DecodePush parses and checks a push body. maxMutations bounds the
// mutations of one push (0: no bound).
func DecodePush(body []byte, maxMutations int) (*PushRequest, error) {
	var req PushRequest
	if err := DecodeEnvelope(body, &req); err != nil {
		return nil, badRequest("push body: %v", err)
	}
	if req.PushVersion != 1 {
		return nil, &VersionError{VersionType: "push"}
	}
	if !ValidID(req.ClientGroupID) {
		return nil, badRequest("clientGroupID must match ^[A-Za-z0-9_-]{1,64}$")
	}
	if maxMutations > 0 && len(req.Mutations) > maxMutations {
		return nil, badRequest("push carries %d mutations, more than the limit of %d", len(req.Mutations), maxMutations)
	}
	last := make(map[string]int64, 1)
	for i, m := range req.Mutations {
		if !ValidID(m.ClientID) {
			return nil, badRequest("mutations[%d].clientID must match ^[A-Za-z0-9_-]{1,64}$", i)
		}
		if m.ID < 1 {
			return nil, badRequest("mutations[%d].id must be a positive integer", i)
		}
		// Replicache sends each client's mutations in increasing id order;
		// anything else is a broken or hostile client.
		if prev, ok := last[m.ClientID]; ok && m.ID <= prev {
			return nil, badRequest("mutations[%d].id %d does not follow %d for client %s", i, m.ID, prev, m.ClientID)
		}
		last[m.ClientID] = m.ID
	}
	return &req, nil
}

// DecodePull parses and checks a pull body. The cookie is parsed separately
// by ParseCookie, because an unplaceable cookie is a protocol answer
// (ClientStateNotFound), not a bad request.
func DecodePull(body []byte) (*PullRequest, error) {
	var req PullRequest
	if err := DecodeEnvelope(body, &req); err != nil {
		return nil, badRequest("pull body: %v", err)
	}
	if req.PullVersion != 1 {
		return nil, &VersionError{VersionType: "pull"}
	}
	if !ValidID(req.ClientGroupID) {
		return nil, badRequest("clientGroupID must match ^[A-Za-z0-9_-]{1,64}$")
	}
	return &req, nil
}

// ParseCookie reads a pull cookie. A null (or absent) cookie returns nil.
// A cookie that is not canvasd's — wrong shape, negative or fractional
// order — returns ErrClientStateNotFound.
func ParseCookie(raw json.RawMessage) (*Cookie, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var c struct {
		Order  json.RawMessage `json:"order"`
		Canvas string          `json:"canvas"`
		Epoch  string          `json:"epoch"`
	}
	if err := DecodeJSON(raw, &c); err != nil {
		return nil, ErrClientStateNotFound
	}
	// Only a bare integer is ours: a quoted or fractional order was not
	// issued by canvasd.
	order, err := strconv.ParseInt(string(c.Order), 10, 64)
	if err != nil || order < 0 || order == math.MaxInt64 || c.Canvas == "" || c.Epoch == "" {
		return nil, ErrClientStateNotFound
	}
	return &Cookie{Order: order, Canvas: c.Canvas, Epoch: c.Epoch}, nil
}
