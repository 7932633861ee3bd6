package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	resp, err := s.pullResponse(c, id, body)
	if err != nil {
		if ok, rerr := replyProtocolError(c, err); ok {
			return rerr
		}
		return err
	}
	return c.JSONBlob(http.StatusOK, resp)
}

// pullResponse answers a pull from the canvas actor's memory when it can
// place the cookie there, else from one snapshot of the database.
func (s *Server) pullResponse(c echo.Context, canvasID string, body []byte) ([]byte, error) {
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
	return encodePullResponse(res)
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
	case cookie != nil && res.GroupCanvas == "" && cookie.Order < res.Canvas.GroupsPurgedVersion:
		return nil, canvas.ErrClientStateNotFound // a returning client of a deleted group
	}
	return &actors.PullResult{
		Cookie:                canvas.Cookie{Order: res.Canvas.Version, Canvas: canvasID, Epoch: res.Canvas.Epoch},
		LastMutationIDChanges: res.LastMutationIDs,
		Patch:                 &actors.Patch{Full: cookie == nil || res.Reset, Changes: res.Changes},
	}, nil
}

// encodePullResponse writes a PullResponseOKV1. The patch is encoded once
// per Patch, however many clients share it.
func encodePullResponse(res *actors.PullResult) ([]byte, error) {
	cookie, err := json.Marshal(res.Cookie)
	if err != nil {
		return nil, err
	}
	lmids := res.LastMutationIDChanges
	if lmids == nil {
		lmids = map[string]int64{}
	}
	changes, err := json.Marshal(lmids)
	if err != nil {
		return nil, err
	}
	patch := res.Patch.JSON(encodePatch)
	out := make([]byte, 0, len(patch)+len(cookie)+len(changes)+64)
	out = append(out, `{"cookie":`...)
	out = append(out, cookie...)
	out = append(out, `,"lastMutationIDChanges":`...)
	out = append(out, changes...)
	out = append(out, `,"patch":`...)
	out = append(out, patch...)
	out = append(out, '}')
	return out, nil
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
