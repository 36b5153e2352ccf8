package openapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/fireboom/fireboom/operation"
)

// Version is the OpenAPI version of the documents Build writes.
const Version = "3.1.0"

// Names in components.schemas and components.securitySchemes. The fixed
// schemas hold a '.', which no GraphQL type name can, so they never clash
// with the input types beside them.
const (
	componentRef     = "#/components/schemas/"
	errorName        = "fireboom.Error"
	graphQLErrorName = "fireboom.GraphQLError"
	patchName        = "fireboom.JSONPatch"
	bearerScheme     = "bearerAuth"
	cookieScheme     = "cookieAuth"
	queryScheme      = "queryAuth"
)

// Options say what Build cannot read from the operations.
type Options struct {
	// Title and DocVersion fill info (defaults "fireboom" and "1.0.0").
	Title, DocVersion string
	// ServerURL, when set, is the document's one server ("" leaves
	// servers out: paths are then relative to where the document was read).
	ServerURL string
	// Cookie and QueryParam name the cookie and query parameter that may
	// carry the token ("" when not accepted). A bearer header always is.
	Cookie, QueryParam string
	// Live returns an operation's liveInterval (0 when it is not live);
	// nil means no operation is.
	Live func(name string) time.Duration
}

// Build writes the OpenAPI 3.1 document (indented JSON) of the public
// operations in ops; internal ones are left out.
func Build(ops []*operation.Operation, schema *ast.Schema, opt Options) ([]byte, error) {
	if opt.Title == "" {
		opt.Title = "fireboom"
	}
	if opt.DocVersion == "" {
		opt.DocVersion = "1.0.0"
	}
	public := make([]*operation.Operation, 0, len(ops))
	for _, op := range ops {
		if !op.Internal {
			public = append(public, op)
		}
	}
	sort.Slice(public, func(i, j int) bool { return public[i].Name < public[j].Name })

	b := &builder{opt: opt, schema: schema, schemas: fixedSchemas(), ids: map[string]bool{}}
	paths := map[string]any{}
	tags := map[string]bool{}
	for _, op := range public {
		item, err := b.pathItem(op)
		if err != nil {
			return nil, err
		}
		paths["/operations/"+op.Name] = item
		if i := strings.IndexByte(op.Name, '/'); i > 0 {
			tags[op.Name[:i]] = true
		}
	}
	doc := document{
		OpenAPI: Version,
		Info: map[string]any{
			"title":   opt.Title,
			"version": opt.DocVersion,
			"description": "The stored GraphQL operations of this fireboom gateway as REST endpoints. " +
				"Queries are GET with variables as query parameters, mutations POST with a JSON body, " +
				"subscriptions and live queries (wg_live=true) stream as Server-Sent Events or JSON lines.",
		},
		Paths: paths,
		Components: map[string]any{
			"schemas":         b.schemas,
			"responses":       errorResponses(),
			"securitySchemes": b.securitySchemes(),
		},
	}
	if opt.ServerURL != "" {
		doc.Servers = []any{map[string]any{"url": opt.ServerURL}}
	}
	if len(tags) > 0 {
		names := make([]string, 0, len(tags))
		for t := range tags {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, n := range names {
			doc.Tags = append(doc.Tags, map[string]any{"name": n})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// document is the top level, in the conventional member order.
type document struct {
	OpenAPI    string         `json:"openapi"`
	Info       map[string]any `json:"info"`
	Servers    []any          `json:"servers,omitempty"`
	Tags       []any          `json:"tags,omitempty"`
	Paths      map[string]any `json:"paths"`
	Components map[string]any `json:"components"`
}

type builder struct {
	opt     Options
	schema  *ast.Schema
	schemas map[string]any
	ids     map[string]bool
}

// operationID is the operation's name with '/' as '_' (what code
// generators accept), made unique.
func (b *builder) operationID(name string) string {
	id := strings.ReplaceAll(name, "/", "_")
	for n := 2; b.ids[id]; n++ {
		id = fmt.Sprintf("%s_%d", strings.ReplaceAll(name, "/", "_"), n)
	}
	b.ids[id] = true
	return id
}

// pathItem describes /operations/<name>.
func (b *builder) pathItem(op *operation.Operation) (map[string]any, error) {
	vars, err := decodeVariables(op)
	if err != nil {
		return nil, err
	}
	for name, def := range vars.defs {
		b.schemas[name] = def
	}
	result, err := resultSchema(b.schema, op.Query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op.Name, err)
	}
	id := b.operationID(op.Name)
	resultName := id + ".Result"
	b.schemas[resultName] = result

	live := op.Kind == operation.Query && b.opt.Live != nil && b.opt.Live(op.Name) > 0
	stream := op.Kind == operation.Subscription || live
	summary, comment := fileComment(op.File)
	o := map[string]any{
		"operationId":     id,
		"x-fireboom-name": op.Name,
		"x-fireboom-kind": string(op.Kind),
		"responses":       responses(op, resultName, live),
		"description":     describe(op, comment, live, b.opt.Live),
	}
	if live {
		o["x-fireboom-live-interval"] = b.opt.Live(op.Name).String()
	}
	if summary != "" {
		o["summary"] = summary
	}
	if i := strings.IndexByte(op.Name, '/'); i > 0 {
		o["tags"] = []any{op.Name[:i]}
	}
	if op.RequiresAuth {
		o["security"] = b.security()
	}
	if !op.RBAC.IsZero() {
		o["x-fireboom-rbac"] = op.RBAC
	}
	method := "get"
	if op.Kind == operation.Mutation {
		method = "post"
		o["requestBody"] = vars.requestBody()
	} else {
		params := vars.parameters(op)
		if stream {
			params = append(params, streamParameters(live)...)
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
	}
	return map[string]any{method: o}, nil
}

// describe writes an operation's description: its file comment, then what
// a client must know (authentication, roles, streaming).
func describe(op *operation.Operation, comment string, live bool, interval func(string) time.Duration) string {
	var parts []string
	if comment != "" {
		parts = append(parts, comment)
	}
	switch {
	case op.Kind == operation.Subscription:
		parts = append(parts, "A subscription: streams as Server-Sent Events (wg_sse=true or Accept: text/event-stream) "+
			"or as JSON lines (application/x-ndjson); wg_subscribe_once=true answers the first result as JSON.")
	case live:
		parts = append(parts, fmt.Sprintf("A live query: with wg_live=true the gateway polls the upstream every %s and streams "+
			"each changed result (SSE or JSON lines); wg_json_patch=true sends RFC 6902 patches (JSON arrays) "+
			"after the first result when smaller. Without wg_live it answers once.", interval(op.Name)))
	}
	if op.RequiresAuth {
		parts = append(parts, "Requires a token: Authorization: Bearer, or the cookie or query parameter of the security schemes.")
	}
	if !op.RBAC.IsZero() {
		parts = append(parts, "Roles: "+rbacText(op.RBAC)+".")
	}
	return strings.Join(parts, "\n\n")
}

func rbacText(r operation.RBAC) string {
	var s []string
	add := func(what string, roles []string) {
		if len(roles) > 0 {
			s = append(s, what+" "+strings.Join(roles, ", "))
		}
	}
	add("all of", r.RequireMatchAll)
	add("any of", r.RequireMatchAny)
	add("not all of", r.DenyMatchAll)
	add("none of", r.DenyMatchAny)
	return strings.Join(s, "; ")
}

// fileComment reads the '#' comment lines that open an operation file:
// the first is the summary, all of them the description.
func fileComment(path string) (summary, all string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" && len(lines) == 0 {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		lines = append(lines, strings.TrimSpace(strings.TrimPrefix(line, "#")))
	}
	if len(lines) == 0 {
		return "", ""
	}
	return lines[0], strings.Join(lines, "\n")
}

// streamParameters are the reserved parameters of subscriptions and live
// queries.
func streamParameters(live bool) []any {
	boolean := func(name, desc string) any {
		return map[string]any{"name": name, "in": "query", "required": false, "description": desc,
			"schema": map[string]any{"type": "boolean", "default": false}}
	}
	var ps []any
	if live {
		ps = append(ps,
			boolean("wg_live", "Stream the query as a live query: the first result, then each changed one."),
			boolean("wg_json_patch", "With wg_live: after the first result, send an RFC 6902 patch (a JSON array) "+
				"instead of the full result (a JSON object) when it is smaller."))
	}
	return append(ps,
		boolean("wg_sse", "Stream as Server-Sent Events (also chosen by Accept: text/event-stream)."),
		boolean("wg_subscribe_once", "Answer the first result as application/json, then end."),
		map[string]any{"name": "wg_last_event_id", "in": "query", "required": false,
			"description": "Resume after this event id (as Last-Event-ID, for clients that cannot set headers).",
			"schema":      map[string]any{"type": "string"}},
		map[string]any{"name": "Last-Event-ID", "in": "header", "required": false,
			"description": "Resume after this event id (EventSource sends it when it reconnects).",
			"schema":      map[string]any{"type": "string"}},
	)
}

// security lists the token sources as alternatives.
func (b *builder) security() []any {
	out := []any{map[string]any{bearerScheme: []any{}}}
	if b.opt.Cookie != "" {
		out = append(out, map[string]any{cookieScheme: []any{}})
	}
	if b.opt.QueryParam != "" {
		out = append(out, map[string]any{queryScheme: []any{}})
	}
	return out
}

func (b *builder) securitySchemes() map[string]any {
	s := map[string]any{
		bearerScheme: map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
			"description": "Authorization: Bearer <JWT>."},
	}
	if b.opt.Cookie != "" {
		s[cookieScheme] = map[string]any{"type": "apiKey", "in": "cookie", "name": b.opt.Cookie,
			"description": "The JWT in a cookie (for browsers)."}
	}
	if b.opt.QueryParam != "" {
		s[queryScheme] = map[string]any{"type": "apiKey", "in": "query", "name": b.opt.QueryParam,
			"description": "The JWT as a query parameter (for EventSource, which cannot send headers)."}
	}
	return s
}

func ref(name string) map[string]any { return map[string]any{"$ref": componentRef + name} }
