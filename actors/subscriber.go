package actors

import "github.com/anthdm/hollywood/actor"

// pokeMsg tells a subscriber that its canvas reached version.
type pokeMsg struct{ version int64 }

// subscriber carries pokes from a canvas actor to one SSE stream. The
// stream reads from a one-slot channel; a poke the stream has not taken yet
// absorbs newer ones, so a slow stream gets the newest version, not a
// backlog.
type subscriber struct {
	ch chan int64
}

func newSubscriber(ch chan int64) actor.Producer {
	return func() actor.Receiver { return &subscriber{ch: ch} }
}

func (s *subscriber) Receive(c *actor.Context) {
	msg, ok := c.Message().(pokeMsg)
	if !ok {
		return
	}
	for {
		select {
		case s.ch <- msg.version:
			return
		default:
		}
		// Full: replace the pending poke with the newer one. Only this
		// actor sends, so after draining the slot the send above succeeds.
		select {
		case old := <-s.ch:
			msg.version = max(msg.version, old)
		default:
		}
	}
}
