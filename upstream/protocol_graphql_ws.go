package upstream

import (
	"encoding/json"
	"fmt"
)

// graphqlWS speaks the legacy graphql-ws subprotocol
// (subscriptions-transport-ws): start/data/error/complete/stop, server "ka"
// keepalives, connection_terminate before closing.
type graphqlWS struct{}

func (graphqlWS) name() string { return ProtocolGraphQLWS }

func (graphqlWS) initFrame(p json.RawMessage) []byte {
	return encodeFrame(frame{Type: "connection_init", Payload: p})
}

func (graphqlWS) subscribeFrame(id string, body []byte) []byte {
	return encodeFrame(frame{ID: id, Type: "start", Payload: body})
}

func (graphqlWS) stopFrame(id string) []byte {
	return encodeFrame(frame{ID: id, Type: "stop"})
}

func (graphqlWS) terminateFrame() []byte { return []byte(`{"type":"connection_terminate"}`) }

func (graphqlWS) pingFrame() []byte { return nil }

func (graphqlWS) pongFrame() []byte { return nil }

func (graphqlWS) decode(b []byte) (message, error) {
	f, err := decodeFrame(b)
	if err != nil {
		return message{}, fmt.Errorf("graphql-ws: bad frame: %w", err)
	}
	m := message{id: f.ID, payload: f.Payload}
	switch f.Type {
	case "connection_ack":
		m.kind = msgAck
	case "connection_error":
		m.kind = msgConnError
	case "ka":
		m.kind = msgKeepAlive
	case "data":
		m.kind = msgNext
	case "error":
		m.kind = msgError
	case "complete":
		m.kind = msgComplete
	default:
		m.kind = msgUnknown
	}
	return m, nil
}

func (graphqlWS) errorData(p json.RawMessage) []byte { return normalizeErrors(p) }
