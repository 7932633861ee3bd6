package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas"
)

// MaxPresenceState bounds a presence state (compacted JSON).
const MaxPresenceState = 2048

// maxPresenceBody bounds a presence request: a state with room for
// whitespace, and the client id.
const maxPresenceBody = 16 << 10

type presenceRequest struct {
	ClientID *string        `json:"clientID"`
	State    jsontext.Value `json:"state"`
}

// presence posts a client's presence: {"clientID", "state": object|null}.
// It needs only the read grant (a viewer still shows a cursor), is never
// versioned and never touches the database.
func (s *Server) presence(c echo.Context) error {
	id, err := canvasID(c)
	if err != nil {
		return err
	}
	r := http.MaxBytesReader(c.Response(), c.Request().Body, maxPresenceBody)
	body, err := io.ReadAll(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, message: fmt.Sprintf("presence body larger than %d bytes", maxPresenceBody)}
		}
		return badRequest("reading body: " + err.Error())
	}
	clientID, state, err := decodePresence(body)
	if err != nil {
		return badRequest("presence body: " + err.Error())
	}
	if s.presenceRate != nil {
		if ok, wait := s.presenceRate.allow(id+"/"+clientID, time.Now()); !ok {
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
			return c.JSON(http.StatusTooManyRequests, errorBody{Error: "presence rate limit of this client exceeded, retry later"})
		}
	}
	if err := s.sys.Presence(c.Request().Context(), id, clientID, userID(c), state); err != nil {
		if errors.Is(err, actors.ErrPresenceTaken) {
			return &apiError{status: http.StatusConflict, message: err.Error()}
		}
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// decodePresence reads a presence body with canvas.DecodeJSON (exactly
// one JSON object, no other field, no duplicate key at any depth, nothing
// after it): a valid clientID and a state that is an object of at most
// MaxPresenceState bytes (compacted) or null. A nil state means null.
func decodePresence(body []byte) (string, json.RawMessage, error) {
	var req presenceRequest
	if err := canvas.DecodeJSON(body, &req); err != nil {
		return "", nil, err
	}
	if req.ClientID == nil || !canvas.ValidID(*req.ClientID) {
		return "", nil, errors.New("clientID must match ^[A-Za-z0-9_-]{1,64}$")
	}
	if req.State == nil {
		return "", nil, errors.New(`state is required: an object, or null when the client leaves`)
	}
	trimmed := bytes.TrimSpace(req.State)
	if string(trimmed) == "null" {
		return *req.ClientID, nil, nil
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", nil, errors.New("state must be a JSON object or null")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, trimmed); err != nil {
		return "", nil, err
	}
	if compact.Len() > MaxPresenceState {
		return "", nil, fmt.Errorf("state is %d bytes, at most %d are allowed", compact.Len(), MaxPresenceState)
	}
	return *req.ClientID, compact.Bytes(), nil
}
