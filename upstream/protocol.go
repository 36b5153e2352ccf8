package upstream

import (
	"bytes"
	"encoding/json"
)

// Subprotocol names offered on every upgrade, preferred first.
const (
	ProtocolTransportWS = "graphql-transport-ws" // the graphql-ws library
	ProtocolGraphQLWS   = "graphql-ws"           // legacy subscriptions-transport-ws
)

// msgKind is the internal meaning of one upstream frame, whatever the
// subprotocol.
type msgKind uint8

const (
	msgUnknown   msgKind = iota
	msgAck               // connection_ack
	msgConnError         // connection_error (legacy): fatal for the connection
	msgNext              // next / data
	msgError             // error: terminal for one subscription
	msgComplete          // complete
	msgPing              // ping: answer pong
	msgPong              // pong
	msgKeepAlive         // ka (legacy)
)

// message is one decoded frame.
type message struct {
	kind    msgKind
	id      string
	payload json.RawMessage
}

// frame is the common wire shape of both subprotocols.
type frame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// exchanger maps frames of one subprotocol to and from message.
type exchanger interface {
	name() string
	initFrame(payload json.RawMessage) []byte
	subscribeFrame(id string, body []byte) []byte
	stopFrame(id string) []byte
	// terminateFrame is sent before a normal close; nil for none.
	terminateFrame() []byte
	// pingFrame is our keepalive; nil when the protocol has none.
	pingFrame() []byte
	pongFrame() []byte
	decode(b []byte) (message, error)
	// errorData turns an error frame's payload into {"errors":[...]}.
	errorData(payload json.RawMessage) []byte
}

func exchangerFor(subprotocol string) exchanger {
	if subprotocol == ProtocolTransportWS {
		return transportWS{}
	}
	// No subprotocol echoed: legacy servers (subscriptions-transport-ws
	// behind old stacks) are the ones that omit it; graphql-ws library
	// servers always echo graphql-transport-ws.
	return graphqlWS{}
}

func encodeFrame(f frame) []byte {
	if len(f.Payload) == 0 {
		f.Payload = nil
	}
	b, _ := json.Marshal(f) // strings and valid raw JSON only
	return b
}

func decodeFrame(b []byte) (frame, error) {
	var f frame
	err := json.Unmarshal(b, &f)
	return f, err
}

// normalizeErrors turns an error payload (an array of GraphQL errors, one
// error object, or an object already holding "errors") into
// {"errors":[...]} on one line.
func normalizeErrors(p json.RawMessage) []byte {
	p = bytes.TrimSpace(p)
	var arr json.RawMessage
	switch {
	case len(p) > 0 && p[0] == '[':
		arr = p
	case len(p) > 0 && p[0] == '{':
		var obj struct {
			Errors json.RawMessage `json:"errors"`
		}
		if json.Unmarshal(p, &obj) == nil && len(obj.Errors) > 0 && bytes.TrimSpace(obj.Errors)[0] == '[' {
			arr = obj.Errors
		} else {
			arr = append(append([]byte{'['}, p...), ']')
		}
	case len(p) > 0 && p[0] == '"':
		// A bare message string (seen from some legacy servers).
		arr = append(append([]byte(`[{"message":`), p...), '}', ']')
	default:
		arr = []byte(`[{"message":"upstream error"}]`)
	}
	var buf bytes.Buffer
	buf.Grow(len(arr) + 12)
	buf.WriteString(`{"errors":`)
	if json.Compact(&buf, arr) != nil {
		buf.Reset()
		buf.WriteString(`{"errors":[{"message":"upstream sent a malformed error"}]`)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}
