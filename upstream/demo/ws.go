package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
)

// The WebSocket subprotocols gqlgen speaks.
const (
	// ProtocolTransportWS is graphql-transport-ws, the protocol of the graphql-ws library.
	ProtocolTransportWS = "graphql-transport-ws"
	// ProtocolGraphQLWS is graphql-ws, the legacy subscriptions-transport-ws protocol.
	ProtocolGraphQLWS = "graphql-ws"
)

// closeSubprotocolNotAcceptable is the close code graphql-ws servers use when
// the client offers no subprotocol they speak.
const closeSubprotocolNotAcceptable = 4406

// wsTrack follows one WebSocket request from upgrade to the end of gqlgen's
// connection teardown. It holds one count of Server.wg from Accept until
// gqlgen's CloseFunc ran (or the handler gave up on the connection), so Close
// can wait for connections without knowing gqlgen's goroutines.
type wsTrack struct {
	s        *Server
	mu       sync.Mutex
	conn     *wsConn
	inited   bool // InitFunc ran: gqlgen reached its run loop or closed the connection
	released bool
}

type wsTrackKey struct{}

func trackOf(ctx context.Context) *wsTrack {
	t, _ := ctx.Value(wsTrackKey{}).(*wsTrack)
	return t
}

// accepted records the new connection; the caller has already counted it in Server.wg.
func (t *wsTrack) accepted(c *wsConn) {
	t.mu.Lock()
	t.conn = c
	t.mu.Unlock()
	t.s.mu.Lock()
	t.s.conns[c] = struct{}{}
	t.s.mu.Unlock()
	t.s.stats.update(func(s *Stats) { s.WebSocketsOpen++; s.WebSocketsTotal++ })
}

// release ends the connection's life in the server's books; safe to call twice.
func (t *wsTrack) release() {
	t.mu.Lock()
	c := t.conn
	if c == nil || t.released {
		t.mu.Unlock()
		return
	}
	t.released = true
	t.mu.Unlock()
	_ = c.Close() // no-op when gqlgen closed it or its close handshake runs
	c.unhold()
	t.s.stats.update(func(s *Stats) { s.WebSocketsOpen-- })
	t.s.wg.Done()
}

// handlerDone runs when gqlgen's handler returned. When gqlgen neither closed
// the connection nor reached its run loop (it returns without closing on a
// connection_init payload that is not an object), nobody else will: close it.
func (t *wsTrack) handlerDone() {
	t.mu.Lock()
	orphan := t.conn != nil && !t.inited && !t.released
	t.mu.Unlock()
	if orphan {
		t.release()
	}
}

// wsImpl is gqlgen's WebsocketImplementation on coder/websocket. Unlike
// gqlgen's own adapter it offers only the server's allowed subprotocols, in
// the server's order of preference, and it accounts for its goroutines.
type wsImpl struct{ s *Server }

func (i wsImpl) Accept(w http.ResponseWriter, r *http.Request, opt transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	for k, vs := range opt.ResponseHeader {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	hw := &hijackWriter{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{Subprotocols: i.s.protocols})
	if err != nil {
		return nil, err
	}
	wc := &wsConn{conn: c, s: i.s, netConn: hw.conn, holds: 1}
	if t := trackOf(r.Context()); t != nil {
		i.s.wg.Add(1) // the handler's count is held, so the counter is > 0 here
		t.accepted(wc)
	}
	return wc, nil
}

// wsConn adapts *websocket.Conn to gqlgen's WebsocketConn.
type wsConn struct {
	conn    *websocket.Conn
	s       *Server
	netConn net.Conn // the hijacked connection, to cut a stuck close handshake

	mu       sync.Mutex
	deadline *time.Timer
	closing  bool
	// holds counts what keeps the connection in Server.conns (where Close
	// can cut it): its accepted life until released, and a running close
	// handshake.
	holds int
}

func (c *wsConn) unhold() {
	c.mu.Lock()
	c.holds--
	last := c.holds == 0
	c.mu.Unlock()
	if last {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	}
}

func (c *wsConn) NextReader() (int, io.Reader, error) {
	typ, data, err := c.conn.Read(context.Background())
	if err != nil {
		switch websocket.CloseStatus(err) {
		case websocket.StatusNormalClosure, websocket.StatusNoStatusRcvd, websocket.StatusGoingAway:
			return int(typ), nil, transport.ErrWebsocketClosed
		}
		return int(typ), nil, err
	}
	return int(typ), bytes.NewReader(data), nil
}

func (c *wsConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, data)
}

// WriteClose starts the close handshake in the background: coder/websocket
// waits up to 5 s for the peer's close frame, and gqlgen calls this while
// holding its connection lock. The goroutine is counted in Server.wg; gqlgen
// calls WriteClose before its CloseFunc, so the connection's own count is
// still held and the WaitGroup cannot be at zero.
func (c *wsConn) WriteClose(code int, reason string) error {
	c.stopDeadline()
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.holds++
	c.mu.Unlock()
	c.s.wg.Add(1)
	go func() {
		defer c.s.wg.Done()
		defer c.unhold()
		_ = c.conn.Close(websocket.StatusCode(code), reason)
	}()
	return nil
}

// Close closes the connection at once unless a close handshake is running,
// which then owns the connection.
func (c *wsConn) Close() error {
	c.stopDeadline()
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return nil
	}
	return c.conn.CloseNow()
}

func (c *wsConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *wsConn) SetReadLimit(n int64) { c.conn.SetReadLimit(n) }

// SetReadDeadline implements gqlgen's pong check (graphql-transport-ws): a
// connection that does not answer a ping in time is cut.
func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
	if t.IsZero() {
		return nil
	}
	c.deadline = time.AfterFunc(time.Until(t), func() { _ = c.conn.CloseNow() })
	return nil
}

func (c *wsConn) stopDeadline() { _ = c.SetReadDeadline(time.Time{}) }

// kill cuts the connection at once, even during a close handshake (which
// coder/websocket's CloseNow would wait for, up to 5 s).
func (c *wsConn) kill() {
	if c.netConn != nil {
		_ = c.netConn.Close()
	}
	_ = c.conn.CloseNow()
}

// hijackWriter records the connection coder/websocket hijacks.
type hijackWriter struct {
	http.ResponseWriter
	conn net.Conn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.conn = c
	return c, brw, err
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// offersAllowed reports whether the upgrade request offers one of protocols.
func offersAllowed(r *http.Request, protocols []string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if slices.Contains(protocols, strings.TrimSpace(p)) {
				return true
			}
		}
	}
	return false
}

// refuseSubprotocol completes the upgrade without a subprotocol and closes
// with 4406, as graphql-ws servers do.
func refuseSubprotocol(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept wrote the HTTP error
	}
	_ = c.Close(closeSubprotocolNotAcceptable, "Subprotocol not acceptable")
}

// isUpgrade reports whether r asks for a WebSocket (the test gqlgen uses).
func isUpgrade(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }
