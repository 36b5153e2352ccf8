package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/fireboom/fireboom/config"
)

// CORS answers, fixed by design: the gateway only serves GET and POST, and
// a browser client needs to send a token, a JSON body and Last-Event-ID,
// and to read the auth challenge, Retry-After and the request id.
const (
	corsAllowMethods  = "GET, POST"
	corsExposeHeaders = "WWW-Authenticate, Retry-After, X-Request-Id"
	corsMaxAge        = "600" // seconds a browser may cache a preflight
)

// corsBaseHeaders are always allowed on cross-origin requests; the
// upstream.forwardHeaders names are added, since forwarding them is their
// purpose.
var corsBaseHeaders = []string{"Authorization", "Content-Type", "Last-Event-ID", "X-Request-Id"}

// cors implements cors.allowedOrigins and cors.allowCredentials.
type cors struct {
	anyOrigin    bool            // "*": any origin, never with credentials
	origins      map[string]bool // exact origins, lower case
	credentials  bool
	allowHeaders string
}

// newCORS returns nil when no origin is allowed (CORS off). Config
// validation already refuses allowCredentials with "*".
func newCORS(cfg *config.Config) *cors {
	c := cfg.CORS
	if len(c.AllowedOrigins) == 0 {
		return nil
	}
	out := &cors{origins: map[string]bool{}, credentials: c.AllowCredentials && !slices.Contains(c.AllowedOrigins, "*")}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			out.anyOrigin = true
			continue
		}
		out.origins[strings.ToLower(o)] = true
	}
	headers := slices.Clone(corsBaseHeaders)
	for _, h := range cfg.Upstream.ForwardHeaders {
		if !slices.ContainsFunc(headers, func(x string) bool { return strings.EqualFold(x, h) }) {
			headers = append(headers, http.CanonicalHeaderKey(h))
		}
	}
	out.allowHeaders = strings.Join(headers, ", ")
	return out
}

// handler answers preflights (OPTIONS with Access-Control-Request-Method)
// itself with 204, before authentication, and adds the CORS headers to
// other requests from an allowed origin. A disallowed origin gets no CORS
// header at all, so the browser refuses the answer to the page.
func (c *cors) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		allowed := origin != "" && (c.anyOrigin || c.origins[strings.ToLower(origin)])
		if allowed {
			if c.anyOrigin {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
			}
			if c.credentials {
				h.Set("Access-Control-Allow-Credentials", "true")
			}
		}
		if !preflight {
			if allowed {
				h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			}
			next.ServeHTTP(w, r)
			return
		}
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		if allowed {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", c.allowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
