package upstream

import (
	"encoding/json"
	"fmt"
)

// transportWS speaks graphql-transport-ws (the graphql-ws library):
// subscribe/next/error/complete, ping/pong both ways.
type transportWS struct{}

func (transportWS) name() string { return ProtocolTransportWS }

func (transportWS) initFrame(p json.RawMessage) []byte {
	return encodeFrame(frame{Type: "connection_init", Payload: p})
}

func (transportWS) subscribeFrame(id string, body []byte) []byte {
	return encodeFrame(frame{ID: id, Type: "subscribe", Payload: body})
}

func (transportWS) stopFrame(id string) []byte {
	return encodeFrame(frame{ID: id, Type: "complete"})
}

func (transportWS) terminateFrame() []byte { return nil }

func (transportWS) pingFrame() []byte { return []byte(`{"type":"ping"}`) }

func (transportWS) pongFrame() []byte { return []byte(`{"type":"pong"}`) }

func (transportWS) decode(b []byte) (message, error) {
	f, err := decodeFrame(b)
	if err != nil {
		return message{}, fmt.Errorf("graphql-transport-ws: bad frame: %w", err)
	}
	m := message{id: f.ID, payload: f.Payload}
	switch f.Type {
	case "connection_ack":
		m.kind = msgAck
	case "next":
		m.kind = msgNext
	case "error":
		m.kind = msgError
	case "complete":
		m.kind = msgComplete
	case "ping":
		m.kind = msgPing
	case "pong":
		m.kind = msgPong
	default:
		m.kind = msgUnknown
	}
	return m, nil
}

func (transportWS) errorData(p json.RawMessage) []byte { return normalizeErrors(p) }
