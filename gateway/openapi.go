package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/openapi"
	"github.com/fireboom/fireboom/operation"
)

// openAPIDoc is the OpenAPI document of one registry snapshot.
type openAPIDoc struct {
	reg  *registry
	body []byte
}

// handleOpenAPI serves the OpenAPI 3.1 document of the operations served
// now. It is built once per registry (a reload builds it anew).
func (g *Gateway) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	reg := g.reg.Load()
	if reg.schema == nil {
		newError(http.StatusServiceUnavailable, codeUnavailable, "the upstream schema is not loaded yet; retrying").
			with("Retry-After", "5").write(w)
		return
	}
	doc := g.apiDoc.Load()
	if doc == nil || doc.reg != reg {
		body, err := g.buildOpenAPI(reg)
		if err != nil {
			g.log.Error("building the OpenAPI document failed", "err", err)
			newError(http.StatusInternalServerError, codeInternal, "the OpenAPI document could not be built").write(w)
			return
		}
		doc = &openAPIDoc{reg: reg, body: body}
		g.apiDoc.Store(doc)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc.body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc.body)
}

// OpenAPIOptions maps the config file to the options of openapi.Build:
// the token's cookie and query parameter, and each operation's
// liveInterval.
func OpenAPIOptions(cfg *config.Config) openapi.Options {
	o := openapi.Options{Cookie: cfg.Auth.Cookie}
	if cfg.Auth.QueryParam != nil {
		o.QueryParam = *cfg.Auth.QueryParam
	}
	ops := cfg.Operations
	o.Live = func(name string) time.Duration { return ops[name].LiveInterval.D() }
	return o
}

// buildOpenAPI describes the endpoints of reg with the running settings.
func (g *Gateway) buildOpenAPI(reg *registry) ([]byte, error) {
	eps := reg.sorted()
	ops := make([]*operation.Operation, len(eps))
	for i, ep := range eps {
		ops[i] = ep.Operation
	}
	opt := OpenAPIOptions(g.settings())
	opt.Live = func(name string) time.Duration {
		if ep := reg.endpoints[name]; ep != nil {
			return ep.live
		}
		return 0
	}
	return openapi.Build(ops, reg.schema, opt)
}
