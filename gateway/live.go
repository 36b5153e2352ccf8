package gateway

import (
	"net/http"
)

// serveLive streams a query as a live query (?wg_live=true).
func (g *Gateway) serveLive(w http.ResponseWriter, r *http.Request, c *call) {
	if c.ep.live <= 0 {
		newError(http.StatusBadRequest, codeInput, c.ep.Name+` is not a live query: set "operations": {"`+c.ep.Name+`": {"liveInterval": "2s"}} in fireboom.json`).write(w)
		return
	}
	newError(http.StatusNotImplemented, "NotImplemented", "live queries are not available yet").write(w)
}
