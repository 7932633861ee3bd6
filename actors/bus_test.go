package actors

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Presence updates of the largest size and deletions of the longest ids
// pack into notifications under PostgreSQL's 8000-byte payload limit, and
// every one of them arrives, in order.
func TestPackEnvelopesStaysUnderThePayloadLimit(t *testing.T) {
	state := json.RawMessage(`{"s":"` + strings.Repeat("é", 1021) + `"}`) // 2,050 bytes of UTF-8
	var items []wirePresence
	for i := range 40 {
		items = append(items, wirePresence{Canvas: strings.Repeat("c", 64), Client: fmt.Sprintf("%064d", i), User: strings.Repeat("u", 256), State: state})
	}
	items = append(items, wirePresence{Canvas: "c", Client: "gone"}) // left: no state
	// < > & stay as they are (escaped they would take six bytes each).
	items = append(items, wirePresence{Canvas: "c", Client: "html", State: json.RawMessage(`{"s":"` + strings.Repeat("<>&", 680) + `"}`)})
	var deleted []string
	for i := range 300 {
		deleted = append(deleted, fmt.Sprintf("%064d", i))
	}
	payloads := packEnvelopes("0123456789ab", items, deleted)
	var gotItems []wirePresence
	var gotDeleted []string
	for _, p := range payloads {
		require.Less(t, len(p), 8000)
		require.True(t, isEnvelope(p))
		var env envelope
		require.NoError(t, json.Unmarshal([]byte(p), &env))
		require.Equal(t, "0123456789ab", env.Instance)
		gotItems = append(gotItems, env.Presence...)
		gotDeleted = append(gotDeleted, env.Deleted...)
	}
	require.Equal(t, deleted, gotDeleted)
	require.Len(t, gotItems, len(items))
	for i := range items {
		require.Equal(t, items[i].Client, gotItems[i].Client)
		require.Equal(t, string(items[i].State), string(gotItems[i].State))
	}
	require.Empty(t, packEnvelopes("x", nil, nil))
	// Poke notifications never look like envelopes.
	require.False(t, isEnvelope(encodeNotification("0123456789ab", []dirtyCanvas{{"c", 1}})))
}
