package canvas

import (
	"errors"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Every request body, and every mutation's args, is decoded once, by
// DecodeJSON or DecodeEnvelope, into one typed value; whatever checks the
// request (authorization included) reads that value, never the bytes
// again. A second, laxer decoder would be a second opinion an attacker can
// play against the first: on duplicate keys, keys differing in case,
// trailing data.
//
// The decoding is strict:
//   - exactly one JSON value, nothing after it but white space;
//   - duplicate object member names are refused, at any depth;
//   - member names match the Go field's name exactly (case-sensitive);
//   - with DecodeJSON, members the type does not know are refused.
//
// Invalid UTF-8 is not refused here: it is turned into U+FFFD in strings
// the type decodes (as encoding/json did), and left to the fields that
// care (mutation args refuse it as a rule error), so a client whose text
// has a broken surrogate gets a rejected mutation rather than a push
// refused forever.
var (
	strictOptions = jsonv2.JoinOptions(
		jsontext.AllowDuplicateNames(false),
		jsontext.AllowInvalidUTF8(true),
		jsonv2.MatchCaseInsensitiveNames(false),
		jsonv2.RejectUnknownMembers(true),
	)
	envelopeOptions = jsonv2.JoinOptions(strictOptions, jsonv2.RejectUnknownMembers(false))
)

// maxDecodeError bounds the error message of a refused body, which may
// quote a member name of any length.
const maxDecodeError = 200

// DecodeJSON decodes body strictly into v, refusing members v does not
// know. For bodies whose shape canvasd owns (a canvas to create, mutation
// args).
func DecodeJSON(body []byte, v any) error {
	return decodeError(jsonv2.Unmarshal(body, v, strictOptions))
}

// DecodeEnvelope decodes body strictly into v but ignores members v does
// not know: for the Replicache envelopes, whose shape the client library
// owns and may extend.
func DecodeEnvelope(body []byte, v any) error {
	return decodeError(jsonv2.Unmarshal(body, v, envelopeOptions))
}

func decodeError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if len(msg) > maxDecodeError {
		cut := maxDecodeError
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return errors.New(msg)
}
