package gateway

import "github.com/fireboom/fireboom/operation"

// ExamplePath is a path worth trying first, for the start-up log's curl
// line: the first subscription by name that needs neither a token nor a
// variable, as an SSE stream; else such a query; else the operations
// index. It never holds a token.
func (g *Gateway) ExamplePath() string {
	eps := g.reg.Load().sorted()
	for _, kind := range []operation.Kind{operation.Subscription, operation.Query} {
		for _, ep := range eps {
			if ep.Kind != kind || ep.RequiresAuth || needsVariables(ep) {
				continue
			}
			if kind == operation.Subscription {
				return "/operations/" + ep.Name + "?wg_sse=true"
			}
			return "/operations/" + ep.Name
		}
	}
	return "/operations"
}

func needsVariables(ep *endpoint) bool {
	for _, v := range ep.Variables {
		if v.Required && v.FromClaim == "" {
			return true
		}
	}
	return false
}
