package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Record kinds, in the Fb-K header of a topic subject's messages.
const (
	kindNext  = 'n' // a result; data is its JSON, Fb-N its ordinal
	kindGap   = 'g' // the source broke; data is the reason
	kindDone  = 'e' // the source completed
	kindError = 'r' // the source ended with an error; data is {"errors":[...]}
	kindStart = 's' // an owner begins its term
	kindStop  = 'x' // an owner let go; data is "idle" or "handoff"
)

// Header names of a record.
const (
	hdrKind = "Fb-K"
	hdrTerm = "Fb-T"
	hdrInst = "Fb-I"
	hdrN    = "Fb-N"
)

// Stop reasons.
const (
	stopIdle    = "idle"    // no instance had clients left
	stopHandoff = "handoff" // the owner is going away; others may go on
)

// record is one message of a topic subject, as the log applies it.
type record struct {
	seq  uint64 // stream sequence
	kind byte
	term uint64
	inst string
	n    uint64 // ordinal of a result
	data []byte
}

// newRecord builds the message of a record for subject.
func newRecord(subject string, kind byte, term uint64, inst string, n uint64, data []byte) *nats.Msg {
	h := nats.Header{
		hdrKind: {string(kind)},
		hdrTerm: {strconv.FormatUint(term, 10)},
		hdrInst: {inst},
	}
	if kind == kindNext {
		h[hdrN] = []string{strconv.FormatUint(n, 10)}
	}
	return &nats.Msg{Subject: subject, Header: h, Data: data}
}

// parseRecord reads a record from a message's headers and data; ok is
// false for a message that is not one (it is skipped).
func parseRecord(seq uint64, h nats.Header, data []byte) (r record, ok bool) {
	k := first(h, hdrKind)
	if len(k) != 1 {
		return r, false
	}
	term, err := strconv.ParseUint(first(h, hdrTerm), 10, 64)
	if err != nil {
		return r, false
	}
	r = record{seq: seq, kind: k[0], term: term, inst: first(h, hdrInst), data: data}
	switch r.kind {
	case kindNext:
		if r.n, err = strconv.ParseUint(first(h, hdrN), 10, 64); err != nil || r.n == 0 {
			return r, false
		}
	case kindGap, kindDone, kindError, kindStart, kindStop:
	default:
		return r, false
	}
	return r, true
}

// first reads a header without canonicalising its name (nats.Header.Get
// would allocate the canonical form on every call).
func first(h nats.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// topicHash names a topic in subjects and KV keys: the key's SHA-256,
// truncated to 128 bits, in hex. The key itself holds secrets.
func topicHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// idTag names a topic's ids: six base-36 digits from the stream's
// incarnation (its creation time) and the topic's hash, so that an id of
// another topic or of a stream that was re-created is not mistaken for
// one of this log's.
func idTag(epoch int64, hash string) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(epoch))
	sum := sha256.Sum256(append(b[:], hash...))
	// 36^5 <= v < 36^6: always six digits.
	v := 60466176 + binary.BigEndian.Uint64(sum[:8])%(2176782336-60466176)
	return strconv.FormatUint(v, 36)
}

// formatID renders "<tag>-<seq base36>.<n base36>".
func formatID(tag string, seq, n uint64) string {
	var b [48]byte
	id := append(b[:0], tag...)
	id = append(id, '-')
	id = strconv.AppendUint(id, seq, 36)
	id = append(id, '.')
	id = strconv.AppendUint(id, n, 36)
	return string(id)
}

// parseID reads an id of formatID.
func parseID(id string) (tag string, seq, n uint64, ok bool) {
	i := strings.IndexByte(id, '-')
	j := strings.LastIndexByte(id, '.')
	if i <= 0 || j < i+2 || j == len(id)-1 {
		return "", 0, 0, false
	}
	var err error
	if seq, err = strconv.ParseUint(id[i+1:j], 36, 64); err != nil {
		return "", 0, 0, false
	}
	if n, err = strconv.ParseUint(id[j+1:], 36, 64); err != nil {
		return "", 0, 0, false
	}
	return id[:i], seq, n, true
}
