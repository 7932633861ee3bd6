package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/canvasd/canvasd/canvas"
)

// FuzzDecodePresence: any body gets an answer, never a panic, and what is
// accepted is a valid client id with null or a compact JSON object of at
// most MaxPresenceState bytes.
func FuzzDecodePresence(f *testing.F) {
	for _, s := range []string{
		`{"clientID":"k","state":{"x":1}}`,
		`{"clientID":"k","state":null}`,
		`{"clientID":"k","state":{"x":1,"x":2}}`,
		`{"clientID":"k","state":{}} {}`,
		`{"clientID":"k","state":[1]}`,
		`{"clientID":"k","state":{"a":{"b":[1,2,{"c":"<&>"}]}}}`,
		`{"clientID":"","state":{}}`,
		`{"clientID":"k","clientID":"k","state":{}}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		clientID, state, err := decodePresence(body)
		if err != nil {
			return
		}
		if !canvas.ValidID(clientID) {
			t.Fatalf("accepted client id %q", clientID)
		}
		if state == nil {
			return
		}
		if len(state) > MaxPresenceState || state[0] != '{' || !json.Valid(state) {
			t.Fatalf("accepted state %q", state)
		}
		var v map[string]any
		if canvas.DecodeJSON(state, &v) != nil {
			t.Fatalf("accepted a state the strict decoder refuses: %q", state)
		}
	})
}
