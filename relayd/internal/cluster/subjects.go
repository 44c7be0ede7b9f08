package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// The cluster keeps everything in one stream, so that every node applies
// mail and the acks, reads and clears that refer to it in one order:
//
//	relay.mail.<recipient>     a message in recipient's mailbox (its seq is the stream's)
//	relay.ev.ack.<client>      the client holds its mail up to a seq
//	relay.ev.read.<client>     the client's model was shown messages
//	relay.ev.clear.<client>    the client cleared its history
//	relay.ev.touch.<client>    the client connected (session metadata)
//
// Presence lives apart, in the KV bucket presenceBucket.
const (
	streamName     = "RELAY"
	subjectAll     = "relay.>"
	mailPrefix     = "relay.mail."
	evPrefix       = "relay.ev."
	presenceBucket = "relay_presence"
)

// token is a client id as one subject token: ids may hold '.', which
// separates tokens, and never '~', which stands for it.
func token(id string) string { return strings.ReplaceAll(id, ".", "~") }

// untoken is the id a token stands for.
func untoken(tok string) string { return strings.ReplaceAll(tok, "~", ".") }

func mailSubject(recipient string) string { return mailPrefix + token(recipient) }

func evSubject(kind, client string) string { return evPrefix + kind + "." + token(client) }

// msgIDBase names a send for JetStream's duplicate window (Nats-Msg-Id,
// with the recipient appended): a send with a ref is named by its sender,
// ref and content, so the same send retried through another node after a
// crash is stored once; one without a ref by its message id.
func msgIDBase(msg store.Message, ref *store.SendRef) string {
	if ref == nil || ref.Ref == "" {
		return msg.ID
	}
	h := sha256.New()
	h.Write([]byte(msg.From))
	h.Write([]byte{0})
	h.Write([]byte(ref.Ref))
	h.Write([]byte{0})
	h.Write(ref.Digest[:])
	return "r" + hex.EncodeToString(h.Sum(nil)[:16])
}
