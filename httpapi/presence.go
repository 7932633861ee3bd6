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
	ClientID *string         `json:"clientID"`
	State    json.RawMessage `json:"state"`
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

// decodePresence reads a presence body: exactly one JSON object with a
// valid clientID and a state that is an object of at most
// MaxPresenceState bytes (compacted) or null; no other field, no
// duplicate key at any depth, nothing after it. A nil state means null.
func decodePresence(body []byte) (string, json.RawMessage, error) {
	if err := strictJSON(body); err != nil {
		return "", nil, err
	}
	var req presenceRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
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

// maxJSONDepth bounds the nesting strictJSON accepts.
const maxJSONDepth = 64

// strictJSON accepts exactly one JSON value with nothing but whitespace
// after it, no object with a key twice (at any depth: decoders disagree
// on which one wins) and nesting of at most maxJSONDepth.
func strictJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := strictValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func strictValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return errors.New("empty body: a JSON object is required")
		}
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxJSONDepth {
		return fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			if seen[key] {
				return fmt.Errorf("duplicate key %q", key)
			}
			seen[key] = true
			if err := strictValue(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := strictValue(dec, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
