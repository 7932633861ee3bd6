package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

// pushTimeout bounds how long a push waits for its canvas to commit it.
const pushTimeout = 30 * time.Second

// protocolError is a Replicache protocol error body; it goes with HTTP 200
// because the client ignores the bodies of other statuses.
type protocolError struct {
	Error       string `json:"error"`
	VersionType string `json:"versionType,omitempty"`
}

// replyProtocolError answers err as a Replicache protocol error, if it is one.
func replyProtocolError(c echo.Context, err error) (bool, error) {
	var ve *canvas.VersionError
	switch {
	case errors.Is(err, canvas.ErrClientStateNotFound):
		c.Set(outcomeKey, outcomeClientState)
		return true, c.JSON(http.StatusOK, protocolError{Error: "ClientStateNotFound"})
	case errors.As(err, &ve):
		return true, c.JSON(http.StatusOK, protocolError{Error: "VersionNotSupported", VersionType: ve.VersionType})
	}
	return false, nil
}

// userID is the user behind a request: the token's sub, or the anonymous
// user "" when authentication is off.
func userID(c echo.Context) string { return principalOf(c).user }

func (s *Server) push(c echo.Context) error {
	id, err := canvasID(c)
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req, err := canvas.DecodePush(body, s.cfg.MaxMutationsPerPush)
	if err == nil && len(req.Mutations) > 0 {
		// A push waits for its commit, but not forever: past this the
		// client gets a 503 and retries (it resends what is pending).
		ctx, cancel := context.WithTimeout(c.Request().Context(), pushTimeout)
		err = s.sys.Push(ctx, id, userID(c), req)
		cancel()
	}
	if err != nil {
		if ok, rerr := replyProtocolError(c, err); ok {
			return rerr
		}
		return err
	}
	return c.JSONBlob(http.StatusOK, []byte("{}"))
}

func (s *Server) pull(c echo.Context) error {
	id, err := canvasID(c)
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	res, err := s.pullResult(c, id, body)
	if err != nil {
		if ok, rerr := replyProtocolError(c, err); ok {
			return rerr
		}
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	// A write error is the client gone: nobody left to answer.
	_ = writePullResponse(c.Response(), res)
	return nil
}

// pullResult answers a pull from the canvas actor's memory when it can
// place the cookie there, else from one snapshot of the database.
func (s *Server) pullResult(c echo.Context, canvasID string, body []byte) (*actors.PullResult, error) {
	req, err := canvas.DecodePull(body)
	if err != nil {
		return nil, err
	}
	cookie, err := canvas.ParseCookie(req.Cookie)
	if err != nil {
		return nil, err
	}
	if cookie != nil && cookie.Canvas != canvasID {
		return nil, canvas.ErrClientStateNotFound
	}
	ctx := c.Request().Context()
	s.meters.pulls.Inc()
	res, err := s.sys.Pull(ctx, canvasID, userID(c), req.ClientGroupID, cookie)
	if errors.Is(err, actors.ErrPullFromStore) {
		s.meters.pullsFromDB.Inc()
		res, err = s.pullFromStore(c, canvasID, req.ClientGroupID, cookie)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// pullFromStore reads a pull from one REPEATABLE READ snapshot.
func (s *Server) pullFromStore(c echo.Context, canvasID, group string, cookie *canvas.Cookie) (*actors.PullResult, error) {
	since := store.Full
	if cookie != nil {
		since = cookie.Order
	}
	res, err := s.store.Pull(c.Request().Context(), canvasID, group, since)
	if err != nil {
		return nil, err
	}
	switch {
	case res.GroupCanvas != "" && res.GroupCanvas != canvasID:
		return nil, canvas.ErrClientStateNotFound // the group is bound to another canvas
	case res.GroupCanvas != "" && res.GroupUser != userID(c):
		return nil, canvas.ErrClientStateNotFound // another user's group
	case cookie != nil && (cookie.Epoch != res.Canvas.Epoch || cookie.Order > res.Canvas.Version):
		return nil, canvas.ErrClientStateNotFound // not this canvas's history
	case res.GroupCanvas == "" && res.GroupDeleted:
		return nil, canvas.ErrClientStateNotFound // a returning client of a deleted group
	}
	return &actors.PullResult{
		Cookie:                canvas.Cookie{Order: res.Canvas.Version, Canvas: canvasID, Epoch: res.Canvas.Epoch},
		LastMutationIDChanges: res.LastMutationIDs,
		Patch:                 &actors.Patch{Full: cookie == nil || res.Reset, Changes: res.Changes},
	}, nil
}

// sharedPatchMaxBytes: a full patch (an initial pull) larger than this,
// as the byte budget counts it, is encoded straight into the response
// through a small buffer, instead of into one byte slice kept for the
// other pulls of the same version and copied once more into the response:
// an initial pull of a large canvas then holds no copy of its encoding.
// Smaller ones (and every incremental patch) are encoded once and shared.
const sharedPatchMaxBytes = 256 << 10

// streamPatch reports whether p is a full patch too large to share.
func streamPatch(p *actors.Patch) bool {
	if !p.Full {
		return false
	}
	var n int64
	for i := range p.Changes {
		switch ch := &p.Changes[i]; ch.Kind {
		case canvas.ChangeNode:
			n += canvas.NodeBytes(ch.Node)
		case canvas.ChangeEdge:
			n += canvas.EdgeBytes(ch.Edge)
		default:
			n += int64(len(ch.Title)) + 64
		}
		if n > sharedPatchMaxBytes {
			return true
		}
	}
	return false
}

// writePullResponse writes a PullResponseOKV1 to w.
func writePullResponse(w io.Writer, res *actors.PullResult) error {
	cookie, err := json.Marshal(res.Cookie)
	if err != nil {
		return err
	}
	lmids := res.LastMutationIDChanges
	if lmids == nil {
		lmids = map[string]int64{}
	}
	changes, err := json.Marshal(lmids)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString(`{"cookie":`)
	_, _ = bw.Write(cookie)
	_, _ = bw.WriteString(`,"lastMutationIDChanges":`)
	_, _ = bw.Write(changes)
	_, _ = bw.WriteString(`,"patch":`)
	if p := res.Patch; streamPatch(p) {
		writePatch(bw, true, p.Changes)
	} else {
		_, _ = bw.Write(p.JSON(encodePatch))
	}
	_ = bw.WriteByte('}')
	return bw.Flush() // a bufio.Writer keeps its first error
}

// writePatch streams a patch array to w: clear first for a full patch.
func writePatch(w *bufio.Writer, full bool, changes []canvas.Change) {
	var op bytes.Buffer
	enc := json.NewEncoder(&op)
	_ = w.WriteByte('[')
	if full {
		_, _ = w.WriteString(`{"op":"clear"}`)
	}
	for i, ch := range changes {
		if i > 0 || full {
			_ = w.WriteByte(',')
		}
		op.Reset()
		_ = enc.Encode(ch.PatchOp())            // values are plain structs: cannot fail
		_, _ = w.Write(op.Bytes()[:op.Len()-1]) // without the encoder's newline
	}
	_ = w.WriteByte(']')
}

// encodePatch encodes a patch array: clear first for a full patch.
func encodePatch(full bool, changes []canvas.Change) []byte {
	buf := bytes.NewBuffer(make([]byte, 0, 64+len(changes)*128))
	buf.WriteByte('[')
	if full {
		buf.WriteString(`{"op":"clear"}`)
	}
	enc := json.NewEncoder(buf)
	for i, ch := range changes {
		if i > 0 || full {
			buf.WriteByte(',')
		}
		_ = enc.Encode(ch.PatchOp()) // values are plain structs: cannot fail
		buf.Truncate(buf.Len() - 1)  // the encoder's newline
	}
	buf.WriteByte(']')
	return buf.Bytes()
}
