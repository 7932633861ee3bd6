package canvas

import (
	"encoding/json"
	"errors"
	"testing"
)

// checkEnvelopeError requires the only errors a decoder may return: a bad
// request (400) or an unsupported version (protocol answer).
func checkEnvelopeError(t *testing.T, err error) {
	t.Helper()
	var bre *BadRequestError
	var ve *VersionError
	switch {
	case errors.As(err, &bre):
		if bre.Reason == "" {
			t.Fatal("BadRequestError without a reason")
		}
	case errors.As(err, &ve):
		if ve.VersionType != "push" && ve.VersionType != "pull" {
			t.Fatalf("VersionError for %q", ve.VersionType)
		}
	default:
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
}

func FuzzDecodePush(f *testing.F) {
	f.Add([]byte(`{"profileID":"p","clientGroupID":"g","pushVersion":1,"schemaVersion":"1","mutations":[{"id":1,"clientID":"c","name":"moveNode","args":{"id":"n","x":1,"y":2},"timestamp":1}]}`), 3)
	f.Add([]byte(`{"clientGroupID":"g","pushVersion":1,"mutations":[{"id":2,"clientID":"c","name":"x","args":null},{"id":2,"clientID":"c","name":"x"}]}`), 10)
	f.Add([]byte(`{"clientGroupID":"g","pushVersion":0,"mutations":[]}`), 1)
	f.Add([]byte(`{"clientGroupID":"g/../x","pushVersion":1}`), 1)
	f.Add([]byte(`{"clientGroupID":"g","pushVersion":1,"mutations":[{"id":1e30,"clientID":"c"}]}`), 1)
	f.Add([]byte(`{"clientGroupID":"g","pushVersion":1} {}`), 1)
	f.Fuzz(func(t *testing.T, body []byte, max int) {
		max %= 8
		req, err := DecodePush(body, max)
		if err != nil {
			if req != nil {
				t.Fatal("request with error")
			}
			checkEnvelopeError(t, err)
			return
		}
		if req.PushVersion != 1 || !ValidID(req.ClientGroupID) {
			t.Fatalf("accepted envelope %+v", req)
		}
		if max > 0 && len(req.Mutations) > max {
			t.Fatalf("%d mutations past the limit %d", len(req.Mutations), max)
		}
		last := map[string]int64{}
		for _, m := range req.Mutations {
			if !ValidID(m.ClientID) || m.ID < 1 {
				t.Fatalf("accepted mutation %+v", m)
			}
			if prev, ok := last[m.ClientID]; ok && m.ID <= prev {
				t.Fatalf("ids not increasing for %s: %d after %d", m.ClientID, m.ID, prev)
			}
			last[m.ClientID] = m.ID
			// Whatever the args, deciding the mutation must not panic and
			// must be a RuleError when it fails.
			if _, err := Decode(m.Name, m.Args, DefaultLimits()); err != nil {
				var re *RuleError
				if !errors.As(err, &re) {
					t.Fatalf("args of %s: not a RuleError: %v", m.Name, err)
				}
			}
		}
		// What was accepted survives a round trip unchanged.
		data, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal accepted request: %v", err)
		}
		again, err := DecodePush(data, max)
		if err != nil {
			t.Fatalf("re-decoding an accepted request: %v", err)
		}
		if len(again.Mutations) != len(req.Mutations) || again.ClientGroupID != req.ClientGroupID {
			t.Fatal("round trip changed the request")
		}
	})
}

func FuzzDecodePull(f *testing.F) {
	f.Add([]byte(`{"profileID":"p","clientGroupID":"g","cookie":null,"pullVersion":1,"schemaVersion":"1"}`))
	f.Add([]byte(`{"clientGroupID":"g","cookie":{"order":3,"canvas":"c","epoch":"e"},"pullVersion":1}`))
	f.Add([]byte(`{"clientGroupID":"g","cookie":"x","pullVersion":0}`))
	f.Add([]byte(`{"clientGroupID":"","pullVersion":1}`))
	f.Add([]byte(`{"clientGroupID":"g","pullVersion":"1"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodePull(body)
		if err != nil {
			if req != nil {
				t.Fatal("request with error")
			}
			checkEnvelopeError(t, err)
			return
		}
		if req.PullVersion != 1 || !ValidID(req.ClientGroupID) {
			t.Fatalf("accepted envelope %+v", req)
		}
		// The cookie of an accepted pull is parsed next; it must answer
		// a cookie or ClientStateNotFound, never panic.
		checkCookie(t, req.Cookie)
	})
}

func FuzzParseCookie(f *testing.F) {
	for _, s := range []string{
		`null`, ``, `{"order":0,"canvas":"c","epoch":"e"}`, `{"order":"5","canvas":"c","epoch":"e"}`,
		`{"order":-1,"canvas":"c","epoch":"e"}`, `{"order":1.5,"canvas":"c","epoch":"e"}`,
		`{"order":9223372036854775807,"canvas":"c","epoch":"e"}`, `{"order":1e3,"canvas":"c","epoch":"e"}`,
		`{"order":1,"canvas":"","epoch":"e"}`, `[1,2]`, `7`, `{"order":1,"canvas":"c","epoch":"e","x":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkCookie(t, raw)
	})
}

// checkCookie checks ParseCookie's contract on raw.
func checkCookie(t *testing.T, raw []byte) {
	t.Helper()
	c, err := ParseCookie(raw)
	if err != nil {
		if !errors.Is(err, ErrClientStateNotFound) || c != nil {
			t.Fatalf("ParseCookie(%q) = %v, %v", raw, c, err)
		}
		return
	}
	if c == nil {
		return // null
	}
	if c.Order < 0 || c.Canvas == "" || c.Epoch == "" {
		t.Fatalf("accepted cookie %+v from %q", c, raw)
	}
	// A cookie canvasd issued parses back to itself.
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseCookie(data)
	if err != nil || *again != *c {
		t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
	}
}
