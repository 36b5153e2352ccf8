package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// `fireboom openapi` on the repository's config prints a valid OpenAPI 3.1
// document of its operations, with the config's live query and server.
func TestOpenAPICommand(t *testing.T) {
	var stdout, stderr syncBuffer
	if code := run([]string{"openapi", "-config", "../../fireboom.json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	doc, err := openapi3.NewLoader().LoadFromData([]byte(stdout.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("validate: %v (openapi %q)", err, doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "http://127.0.0.1:9991" {
		t.Errorf("servers %v", doc.Servers)
	}
	price := doc.Paths.Find("/operations/stocks/Price")
	if price == nil || price.Get.Parameters.GetByInAndName("query", "wg_live") == nil {
		t.Error("stocks/Price is not documented as a live query")
	}
	if doc.Paths.Find("/operations/internal/Rooms") != nil {
		t.Error("an internal operation is documented")
	}
}

// Operations that do not load are named on stderr and left out; -server
// sets the server URL.
func TestOpenAPICommandSkipsBrokenOperations(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "fireboom.json", `{"operationsDir": "ops", "upstream": {"demo": true}}`)
	writeFile(t, dir, "ops/Good.graphql", "query Good { serverTime }\n")
	bad := writeFile(t, dir, "ops/Bad.graphql", "query Bad { nope }\n")
	var stdout, stderr syncBuffer
	code := run([]string{"openapi", "-config", filepath.Join(dir, "fireboom.json"), "-server", "https://api.example.com"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	if want := "not documented: " + bad + ":1:13: Cannot query field \"nope\" on type \"Query\".\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	out := stdout.String()
	if !strings.Contains(out, `"/operations/Good"`) || strings.Contains(out, `"/operations/Bad"`) || !strings.Contains(out, `"url": "https://api.example.com"`) {
		t.Errorf("document:\n%s", out)
	}
}
