package gateway

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/fireboom/fireboom/upstream/demo"
)

// GET /openapi.json describes the operations served now, with the running
// settings (live intervals, token sources), and validates as OpenAPI 3.1.
func TestOpenAPIDocument(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"auth": {"cookie": "fb_token"}, "operations": {"stocks/Price": {"liveInterval": "2s"}}}`)
	resp := get(t, g.URL+"/openapi.json")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("validate: %v (openapi %s)", err, doc.OpenAPI)
	}
	var paths []string
	for p := range doc.Paths.Map() {
		paths = append(paths, strings.TrimPrefix(p, "/operations/"))
	}
	sort.Strings(paths)
	var served []string
	for _, ep := range g.reg.Load().sorted() {
		served = append(served, ep.Name)
	}
	if strings.Join(paths, " ") != strings.Join(served, " ") {
		t.Fatalf("paths %v, served %v", paths, served)
	}
	price := doc.Paths.Find("/operations/stocks/Price").Get
	if price.Parameters.GetByInAndName("query", "wg_live") == nil {
		t.Error("the live query has no wg_live parameter")
	}
	if doc.Components.SecuritySchemes["cookieAuth"].Value.Name != "fb_token" {
		t.Error("the cookie scheme does not name the configured cookie")
	}
	// The configured query parameter default is documented too.
	if q := doc.Components.SecuritySchemes["queryAuth"]; q == nil || q.Value.Name == "" {
		t.Error("no query parameter scheme")
	}
	if again := readAll(t, get(t, g.URL+"/openapi.json")); again != body {
		t.Error("the document changed between two requests")
	}
}
