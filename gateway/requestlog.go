package gateway

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
)

// requestIDHeader carries the request id: honoured when the client sends a
// sane one, generated otherwise, and always returned.
const requestIDHeader = "X-Request-Id"

// maxLoggedTarget bounds the logged path and query.
const maxLoggedTarget = 2048

// requestLog writes one log line per request once it is answered (for a
// stream: when the stream ends): request id, method, path and query with
// every token parameter removed, status, duration, bytes written and the
// client's address (see proxies.clientIP).
// Liveness, readiness and metrics probes log at debug level so that they do
// not drown the rest.
//
// No header is logged, so tokens sent as Authorization or cookie never
// reach the log; query tokens are stripped by loggedTarget.
func (g *Gateway) requestLog(next http.Handler) http.Handler {
	param := *g.cfg.Auth.QueryParam
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(requestIDHeader, id)
		client := g.proxies.clientIP(r)
		lw := &loggingWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
		returned := false
		// Deferred so that a handler aborted with http.ErrAbortHandler is
		// logged too (with the status written so far, 0 if none).
		defer func() {
			if lw.held {
				return // a detached stream logs when it ends (holdRequestLog)
			}
			status := lw.status
			if status == 0 && returned {
				status = http.StatusOK // net/http's implicit answer
			}
			level := slog.LevelInfo
			switch {
			case status >= 500 || status == 0:
				level = slog.LevelWarn
			case r.URL.Path == "/health" || r.URL.Path == "/ready" || r.URL.Path == "/metrics":
				level = slog.LevelDebug
			}
			g.logRequest(r.Context(), level, id, r.Method, loggedTarget(r.URL, param), client, status, start, lw.bytes)
		}()
		lw.hold = func() func(int64) {
			// Only what the line needs: the stream must not keep the
			// request or net/http's response alive.
			status, head, target := lw.status, lw.bytes, loggedTarget(r.URL, param)
			if status == 0 {
				status = http.StatusOK
			}
			method := r.Method
			return func(body int64) {
				g.logRequest(context.Background(), slog.LevelInfo, id, method, target, client, status, start, head+body)
			}
		}
		next.ServeHTTP(lw, r)
		returned = true
	})
}

// logRequest writes a request's log line.
func (g *Gateway) logRequest(ctx context.Context, level slog.Level, id, method, target, client string, status int, start time.Time, bytes int64) {
	g.log.LogAttrs(ctx, level, "request",
		slog.String("id", id),
		slog.String("method", method),
		slog.String("path", target),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.Int64("bytes", bytes),
		slog.String("client", client),
	)
}

// bodyReadTimeout bounds reading a request body (1 MiB at 35 KB/s); see
// Gateway.bodyTimeout.
const bodyReadTimeout = 30 * time.Second

// bodyDeadline gives a request that declares a body bodyTimeout to send
// it. The server has no ReadTimeout (it would cut streams), and net/http
// reads and discards up to 256 KB of a body the handler left unread before
// it answers: without a deadline, a client that declares a body and never
// sends it would hold the connection on any answer, an error included.
// The handler that reads a body clears the deadline when it is done.
func (g *Gateway) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 { // -1: chunked, length unknown
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.bodyTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

// holdRequestLog is for a stream that outlives its handler (see streamTo):
// the request's log line is then written by the returned func when the
// stream ends, with the body bytes it wrote, instead of when the handler
// returns. It returns nil when w is not the request log's writer.
func holdRequestLog(w http.ResponseWriter) func(body int64) {
	lw := requestLogWriter(w)
	if lw == nil || lw.hold == nil || lw.held {
		return nil
	}
	lw.held = true
	return lw.hold()
}

// requestLogWriter finds the request log's writer under w (nil if none).
// Its status also tells whether the response has begun.
func requestLogWriter(w http.ResponseWriter) *loggingWriter {
	for {
		if lw, ok := w.(*loggingWriter); ok {
			return lw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

// validRequestID accepts ids of 1 to 128 characters from a conservative
// set (UUIDs, base32/64 ids, dotted trace ids), so a client cannot put
// arbitrary text into the log or the response header.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=') {
			return false
		}
	}
	return true
}

// loggedTarget is the request's path and query for the log, without the
// token query parameter. The conventional name access_token (RFC 6750
// §2.3) is removed as well even when auth.queryParam names another
// parameter or is off: a client that sends a token where it is not read
// still must not get it logged.
func loggedTarget(u *url.URL, param string) string {
	c := auth.StripQueryToken(u, param)
	if param != config.DefaultQueryParam {
		c = auth.StripQueryToken(c, config.DefaultQueryParam)
	}
	if strings.Contains(c.RawQuery, ";") {
		// net/url does not split at ";", so StripQueryToken keeps a pair
		// such as "a=1;access_token=..." whole: drop such pieces too.
		c.RawQuery = stripSemicolonTokens(c.RawQuery, param)
	}
	s := c.EscapedPath()
	if c.RawQuery != "" {
		s += "?" + c.RawQuery
	}
	if len(s) > maxLoggedTarget {
		s = s[:maxLoggedTarget] + "…"
	}
	return s
}

// stripSemicolonTokens removes ";"-separated pieces naming a token
// parameter from each "&"-separated pair of rawQuery.
func stripSemicolonTokens(rawQuery, param string) string {
	isToken := func(piece string) bool {
		key, _, _ := strings.Cut(piece, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		return (key == param && param != "") || key == config.DefaultQueryParam
	}
	pairs := strings.Split(rawQuery, "&")
	for i, p := range pairs {
		if !strings.Contains(p, ";") {
			continue
		}
		pieces := strings.Split(p, ";")
		kept := pieces[:0]
		for _, piece := range pieces {
			if !isToken(piece) {
				kept = append(kept, piece)
			}
		}
		pairs[i] = strings.Join(kept, ";")
	}
	return strings.Join(pairs, "&")
}

// loggingWriter records the status and the bytes written. It implements
// Unwrap (so http.ResponseController reaches the server's writer for write
// deadlines) and FlushError/Flush (so streams flush, and flush errors still
// reach sse.Serve).
type loggingWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	status int
	bytes  int64
	// hold makes the line's writer for holdRequestLog; held says it was
	// made, and the stream writes the line.
	hold func() func(body int64)
	held bool
}

// WriteHeader records the first final status; 1xx answers are informational.
func (w *loggingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes written.
func (w *loggingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// FlushError flushes the underlying writer and reports its error; it is
// what http.ResponseController.Flush calls.
func (w *loggingWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.rc.Flush()
}

// Flush implements http.Flusher for code that asserts it directly.
func (w *loggingWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *loggingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
