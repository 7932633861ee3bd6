package canvas

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// objectKeysUnique walks one JSON document and reports whether no object
// holds a member name twice and nothing follows the value.
func objectKeysUnique(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj    bool
		expect bool // next token of an object is a key
		seen   map[string]bool
	}
	var stack []*frame
	values := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return values == 1
		}
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expect {
			if d, ok := tok.(json.Delim); !ok || d != '}' {
				k := tok.(string)
				if top.seen[k] {
					return false
				}
				top.seen[k] = true
				top.expect = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, expect: true, seen: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			values++
		} else if top := stack[len(stack)-1]; top.obj {
			top.expect = true
		}
	}
}

// FuzzStrictDecode: whatever DecodeJSON accepts is one JSON value with
// no duplicate member names, nothing after it, and only the members the
// type names, spelled exactly; and the decoded value is what a plain
// reading of the document gives. So no second reader of the same bytes can
// see another id than the one authorization checked.
func FuzzStrictDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","title":"t"}`,
		`{"id":"a","id":"b"}`,
		`{"id":"a","ID":"b"}`,
		`{"Id":"a"}`,
		`{"id":null}`,
		`{"id":"a","id":null}`,
		`{"id":"a"}]`,
		`{"id":"a"} {"id":"b"}`,
		`{"id":"s\u0065cret"}`,
		`{"title":"x","extra":1}`,
		` {"id":"a"} `,
		`null`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		}
		if DecodeJSON(body, &req) != nil {
			return
		}
		if !objectKeysUnique(body) {
			t.Fatalf("accepted a document with a duplicate name or trailing data: %q", body)
		}
		var plain any
		if err := json.Unmarshal(body, &plain); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, body)
		}
		m, ok := plain.(map[string]any)
		if !ok {
			if plain != nil {
				t.Fatalf("accepted a %T as an object: %q", plain, body)
			}
			return
		}
		for k := range m {
			if k != "id" && k != "title" {
				t.Fatalf("accepted the unknown member %q: %q", k, body)
			}
		}
		if id, _ := m["id"].(string); id != req.ID && bytes.ContainsRune(body, '\ufffd') == bytes.ContainsRune([]byte(id), '\ufffd') {
			t.Fatalf("decoded id %q, the document says %q: %q", req.ID, id, body)
		}
	})
}

// FuzzStrictEnvelope: the Replicache envelopes are decoded as strictly,
// except that unknown members are ignored.
func FuzzStrictEnvelope(f *testing.F) {
	f.Add([]byte(`{"profileID":"p","clientGroupID":"g","pullVersion":1,"cookie":{"order":1,"canvas":"c","epoch":"e"}}`))
	f.Add([]byte(`{"clientGroupID":"g","clientGroupID":"h","pullVersion":1}`))
	f.Add([]byte(`{"ClientGroupID":"h","clientGroupID":"g","pullVersion":1}`))
	f.Add([]byte(`{"clientGroupID":"g","pullVersion":1,"cookie":{"canvas":"c","canvas":"d"}}`))
	f.Add([]byte(`{"clientGroupID":"g","pullVersion":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req PullRequest
		if DecodeEnvelope(body, &req) != nil {
			return
		}
		if !objectKeysUnique(body) {
			t.Fatalf("accepted a document with a duplicate name or trailing data: %q", body)
		}
		var plain map[string]any
		if json.Unmarshal(body, &plain) != nil || plain == nil {
			return // null, or a shape encoding/json reads differently
		}
		if g, ok := plain["clientGroupID"].(string); ok && g != req.ClientGroupID && !bytes.ContainsRune([]byte(g), '\ufffd') {
			t.Fatalf("decoded group %q, the document says %q: %q", req.ClientGroupID, g, body)
		}
		if _, ok := plain["clientGroupID"]; !ok && req.ClientGroupID != "" {
			t.Fatalf("decoded group %q from a document without one (a case-varied name?): %q", req.ClientGroupID, body)
		}
	})
}
