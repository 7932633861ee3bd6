package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

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
		err = s.sys.Push(c.Request().Context(), id, userID(c), req)
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
	return c.JSON(http.StatusOK, resp)
}

func (s *Server) pullResponse(c echo.Context, canvasID string, body []byte) (*canvas.PullResponse, error) {
	req, err := canvas.DecodePull(body)
	if err != nil {
		return nil, err
	}
	cookie, err := canvas.ParseCookie(req.Cookie)
	if err != nil {
		return nil, err
	}
	since := store.Full
	if cookie != nil {
		if cookie.Canvas != canvasID {
			return nil, canvas.ErrClientStateNotFound
		}
		since = cookie.Order
	}
	res, err := s.store.Pull(c.Request().Context(), canvasID, req.ClientGroupID, since)
	if err != nil {
		return nil, err
	}
	s.pulls.count.Add(1)
	switch {
	case res.GroupCanvas != "" && res.GroupCanvas != canvasID:
		return nil, canvas.ErrClientStateNotFound // the group is bound to another canvas
	case res.GroupCanvas != "" && res.GroupUser != userID(c):
		return nil, canvas.ErrClientStateNotFound // another user's group
	case cookie != nil && (cookie.Epoch != res.Canvas.Epoch || cookie.Order > res.Canvas.Version):
		return nil, canvas.ErrClientStateNotFound // not this canvas's history
	}
	resp := &canvas.PullResponse{
		Cookie:                canvas.Cookie{Order: res.Canvas.Version, Canvas: canvasID, Epoch: res.Canvas.Epoch},
		LastMutationIDChanges: res.LastMutationIDs,
		Patch:                 make([]canvas.PatchOp, 0, len(res.Changes)+1),
	}
	if cookie == nil {
		resp.Patch = append(resp.Patch, canvas.ClearOp())
	}
	for _, ch := range res.Changes {
		resp.Patch = append(resp.Patch, ch.PatchOp())
	}
	return resp, nil
}

// strictJSON decodes one JSON value and rejects trailing data.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}
