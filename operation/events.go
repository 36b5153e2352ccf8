package operation

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// The directives of event fields, declared for gqlparser by eventsPrelude.
const (
	dirListen  = "listen"
	dirPublish = "publish"
	// dirEventsOnly marks a schema built without an upstream: only event
	// fields can be served.
	dirEventsOnly = "fireboomEventsOnly"
)

// Source kinds, as in fireboom.json; config names them the same.
const (
	KindPostgres = "postgres"
	KindNATS     = "nats"
	KindRedis    = "redis"
)

// eventsPrelude declares @listen and @publish so that gqlparser validates
// their names and arguments; the values are checked by readEvent.
const eventsPrelude = `"Feeds a Subscription field from an event source of fireboom.json (PostgreSQL LISTEN, a NATS subject, a Redis channel)."
directive @listen(source: String!, channel: String, subject: String, filter: _EventFilter) on FIELD_DEFINITION
"Makes a Mutation field publish its arguments (or payload) to an event source of fireboom.json."
directive @publish(source: String!, channel: String, subject: String, payload: String) on FIELD_DEFINITION
"The filter of @listen: payload fields (nested objects for dotted paths) and the values they must equal."
scalar _EventFilter
`

// EventsSchema is the events SDL file (fireboom.json "events.schemaFile")
// and the sources its directives may name.
type EventsSchema struct {
	File    string            // path, as problems name it
	SDL     []byte            // its content
	Sources map[string]string // source name → KindPostgres, KindNATS or KindRedis
}

// BuildSchema loads the schema operations are compiled against: the
// upstream's SDL (base; nil when there is no upstream) extended by the
// events schema (nil when there is none). The error is base's: SDL that
// does not validate (ErrSchema), or neither schema given. Problems are the
// events schema's, as file:line:col; with any, the schema returned is
// base's alone (nil without an upstream), so upstream operations are still
// served and event operations fail to compile.
//
// Without an upstream the events SDL declares its own type Query; only its
// @listen and @publish fields can be served. With one, the events SDL may
// declare types and extend Subscription with @listen fields and Mutation
// with @publish fields (also when the upstream has no such root type).
func BuildSchema(base *ast.Source, events *EventsSchema) (*ast.Schema, []Problem, error) {
	var baseSchema *ast.Schema
	if base != nil {
		s, err := validator.LoadSchema(validator.Prelude, base)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrSchema, err)
		}
		baseSchema = s
	}
	if events == nil {
		if baseSchema == nil {
			return nil, nil, errors.New("no schema: neither an upstream nor an events schema is configured")
		}
		return baseSchema, nil, nil
	}
	s, problems := loadEvents(base, baseSchema, events)
	if len(problems) > 0 {
		sortProblems(problems)
		return baseSchema, problems, nil
	}
	return s, nil, nil
}

func loadEvents(base *ast.Source, baseSchema *ast.Schema, ev *EventsSchema) (*ast.Schema, []Problem) {
	src := &ast.Source{Name: ev.File, Input: string(ev.SDL)}
	doc, err := parser.ParseSchema(src)
	if err != nil {
		return nil, gqlProblems(ev.File, err)
	}
	gen := eventsPrelude
	inputs := []*ast.Source{validator.Prelude}
	if base == nil {
		gen += "directive @" + dirEventsOnly + " on SCHEMA\nextend schema @" + dirEventsOnly + "\n"
	} else {
		inputs = append(inputs, base)
		// The upstream may have no Mutation or Subscription root: the
		// events schema's then becomes one.
		if baseSchema.Mutation == nil && declares(doc, "Mutation") {
			gen += "extend schema { mutation: Mutation }\n"
		}
		if baseSchema.Subscription == nil && declares(doc, "Subscription") {
			gen += "extend schema { subscription: Subscription }\n"
		}
	}
	inputs = append(inputs, &ast.Source{Name: "fireboom-events-prelude.graphql", Input: gen}, src)
	s, err := validator.LoadSchema(inputs...)
	if err != nil {
		return nil, schemaProblems(ev.File, err)
	}

	var problems []Problem
	for _, name := range sortedKeys(s.Types) {
		def := s.Types[name]
		for _, fd := range def.Fields {
			fromEvents := fd.Position != nil && fd.Position.Src == src
			listen, publish := fd.Directives.ForName(dirListen), fd.Directives.ForName(dirPublish)
			if listen == nil && publish == nil {
				if fromEvents {
					problems = append(problems, plainRootField(s, def, fd, base == nil)...)
				}
				continue
			}
			_, probs := readEvent(s, def, fd, ev.Sources)
			problems = append(problems, probs...)
		}
	}
	return s, problems
}

// declares reports whether the document defines or extends the type name.
func declares(doc *ast.SchemaDocument, name string) bool {
	return doc.Definitions.ForName(name) != nil || doc.Extensions.ForName(name) != nil
}

// plainRootField reports a field the events SDL adds to a root type
// without @listen or @publish: nothing could serve it.
func plainRootField(s *ast.Schema, def *ast.Definition, fd *ast.FieldDefinition, eventsOnly bool) []Problem {
	switch {
	case def == s.Subscription:
		return []Problem{posProblem(fd.Position, "%s.%s: a subscription field of the events schema needs @listen", def.Name, fd.Name)}
	case def == s.Mutation:
		return []Problem{posProblem(fd.Position, "%s.%s: a mutation field of the events schema needs @publish", def.Name, fd.Name)}
	case def == s.Query && !eventsOnly:
		return []Problem{posProblem(fd.Position, "%s.%s: the events schema may not add query fields (the upstream serves queries)", def.Name, fd.Name)}
	}
	return nil
}

// eventSpec is an event field's @listen or @publish, read and checked.
type eventSpec struct {
	publish bool
	source  string
	subject bool // a NATS subject, else a channel
	target  template
	raw     string // target as written
	filter  []filterSpec
	payload *template // nil: every argument, as a JSON object
}

// filterSpec is one condition of @listen(filter:): a dotted path and the
// template of its value (literal numbers and booleans are templates
// without placeholders).
type filterSpec struct {
	path string
	tpl  template
}

// readEvent reads the @listen or @publish of fd, a field of parent, and
// checks it against the schema and, when kinds is not nil, the sources.
func readEvent(s *ast.Schema, parent *ast.Definition, fd *ast.FieldDefinition, kinds map[string]string) (*eventSpec, []Problem) {
	listen, publish := fd.Directives.ForName(dirListen), fd.Directives.ForName(dirPublish)
	where := parent.Name + "." + fd.Name
	switch {
	case listen != nil && publish != nil:
		return nil, []Problem{posProblem(publish.Position, "%s: a field has @listen or @publish, not both", where)}
	case listen != nil && parent != s.Subscription:
		return nil, []Problem{posProblem(listen.Position, "%s: @listen is only allowed on fields of the subscription type%s", where, rootName(s.Subscription))}
	case publish != nil && parent != s.Mutation:
		return nil, []Problem{posProblem(publish.Position, "%s: @publish is only allowed on fields of the mutation type%s", where, rootName(s.Mutation))}
	}
	d := listen
	spec := &eventSpec{publish: publish != nil}
	if d == nil {
		d = publish
	}
	var problems []Problem
	bad := func(pos *ast.Position, format string, a ...any) {
		problems = append(problems, posProblem(pos, "%s: @%s: %s", where, d.Name, fmt.Sprintf(format, a...)))
	}
	str := func(a *ast.Argument) (string, bool) {
		if a.Value == nil || (a.Value.Kind != ast.StringValue && a.Value.Kind != ast.BlockValue) {
			bad(a.Position, "%s must be a string", a.Name)
			return "", false
		}
		return a.Value.Raw, true
	}
	argNames := make([]string, len(fd.Arguments))
	for i, a := range fd.Arguments {
		argNames[i] = a.Name
	}
	checkArgs := func(a *ast.Argument, t template) {
		for _, name := range t.args() {
			if fd.Arguments.ForName(name) == nil {
				bad(a.Value.Position, "{{ args.%s }} names no argument of %s (%s)", name, fd.Name, listOrNone(argNames))
			}
		}
	}

	kind := ""
	if a := d.Arguments.ForName("source"); a != nil {
		if name, ok := str(a); ok {
			spec.source = name
			if kinds != nil {
				k, known := kinds[name]
				if !known {
					bad(a.Value.Position, "unknown source %q (fireboom.json sources: %s)", name, listOrNone(sortedKeys(kinds)))
				}
				kind = k
			}
		}
	}
	channel, subject := d.Arguments.ForName("channel"), d.Arguments.ForName("subject")
	switch {
	case channel != nil && subject != nil:
		bad(subject.Position, "give channel (PostgreSQL, Redis) or subject (NATS), not both")
	case channel == nil && subject == nil:
		bad(d.Position, "needs channel (PostgreSQL, Redis) or subject (NATS)")
	case kind == KindNATS && channel != nil:
		bad(channel.Position, "source %q is NATS: use subject, not channel", spec.source)
	case (kind == KindPostgres || kind == KindRedis) && subject != nil:
		bad(subject.Position, "source %q is %s: use channel, not subject", spec.source, kindTitle(kind))
	}
	target := channel
	if subject != nil {
		target, spec.subject = subject, true
	}
	if target != nil {
		if raw, ok := str(target); ok {
			t, err := parseTemplate(raw)
			switch {
			case err != nil:
				bad(target.Value.Position, "%s: %v", target.Name, err)
			case raw == "":
				bad(target.Value.Position, "%s is empty", target.Name)
			default:
				spec.target, spec.raw = t, raw
				checkArgs(target, t)
			}
		}
	}

	if a := d.Arguments.ForName("filter"); a != nil {
		if a.Value == nil || a.Value.Kind != ast.ObjectValue {
			bad(a.Position, "filter is an object such as { userId: \"{{ args.userId }}\" }")
		} else {
			problems = append(problems, readFilter(s, fd, a.Value, "", s.Types[fd.Type.Name()], spec, bad, checkArgs)...)
		}
	}
	if a := d.Arguments.ForName("payload"); a != nil {
		if raw, ok := str(a); ok {
			t, err := parseTemplate(raw)
			if err == nil {
				err = checkPayloadTemplate(t)
			}
			if err != nil {
				bad(a.Value.Position, "payload: %v", err)
			} else {
				spec.payload = &t
				checkArgs(a, t)
			}
		}
	}
	if spec.publish {
		if err := checkPublishResult(s, fd.Type); err != nil {
			bad(fd.Position, "%v", err)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return spec, nil
}

// readFilter flattens a filter object into spec.filter, checking each path
// against the type def (nil when the path left the object types).
func readFilter(s *ast.Schema, fd *ast.FieldDefinition, v *ast.Value, prefix string, def *ast.Definition,
	spec *eventSpec, bad func(*ast.Position, string, ...any), checkArgs func(*ast.Argument, template)) []Problem {
	if def == nil || (def.Kind != ast.Object && def.Kind != ast.Interface) || fd.Type.Elem != nil && prefix == "" {
		name := fd.Type.String()
		if def != nil && prefix != "" {
			name = def.Name
		}
		bad(v.Position, "filter%s: %s is not an object type, so it has no fields to filter on", pathSuffix(prefix), name)
		return nil
	}
	for _, ch := range v.Children {
		path := ch.Name
		if prefix != "" {
			path = prefix + "." + ch.Name
		}
		f := def.Fields.ForName(ch.Name)
		if f == nil {
			bad(ch.Position, "filter: type %s has no field %s", def.Name, ch.Name)
			continue
		}
		if ch.Value.Kind == ast.ObjectValue {
			if f.Type.Elem != nil {
				bad(ch.Position, "filter: %s is a list; a filter path goes through objects only", path)
				continue
			}
			readFilter(s, fd, ch.Value, path, s.Types[f.Type.Name()], spec, bad, checkArgs)
			continue
		}
		leaf := s.Types[f.Type.Name()]
		if f.Type.Elem != nil || leaf == nil || (leaf.Kind != ast.Scalar && leaf.Kind != ast.Enum) {
			bad(ch.Position, "filter: %s is %s; a filter compares scalar or enum fields", path, f.Type.String())
			continue
		}
		var t template
		switch ch.Value.Kind {
		case ast.StringValue, ast.BlockValue:
			var err error
			if t, err = parseTemplate(ch.Value.Raw); err != nil {
				bad(ch.Value.Position, "filter %s: %v", path, err)
				continue
			}
			checkArgs(&ast.Argument{Name: "filter", Value: ch.Value, Position: ch.Position}, t)
		case ast.IntValue, ast.FloatValue, ast.BooleanValue, ast.EnumValue:
			if ch.Value.Raw != "" {
				t.parts = []tplPart{{text: ch.Value.Raw}}
			}
		default:
			bad(ch.Value.Position, "filter %s: a value is a string (with {{ args.NAME }} placeholders), a number, a boolean or an enum name", path)
			continue
		}
		spec.filter = append(spec.filter, filterSpec{path: path, tpl: t})
	}
	return nil
}

// checkPublishResult accepts Boolean, or an object type with a success
// field of type Boolean and no other non-null field: a publish answers
// {"success": true}.
func checkPublishResult(s *ast.Schema, t *ast.Type) error {
	if t.Elem != nil {
		return fmt.Errorf("the result type is %s; use Boolean or a type such as PublishResult { success: Boolean! }", t.String())
	}
	def := s.Types[t.NamedType]
	if def != nil && def.Kind == ast.Scalar && def.Name == "Boolean" {
		return nil
	}
	if def == nil || def.Kind != ast.Object {
		return fmt.Errorf("the result type is %s; use Boolean or a type such as PublishResult { success: Boolean! }", t.String())
	}
	hasSuccess := false
	for _, f := range def.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		if f.Name == "success" && f.Type.Elem == nil && f.Type.NamedType == "Boolean" {
			hasSuccess = true
			continue
		}
		if f.Type.NonNull {
			return fmt.Errorf("the result type %s has the non-null field %s; a publish answers only {success: true}", def.Name, f.Name)
		}
	}
	if !hasSuccess {
		return fmt.Errorf("the result type %s needs a field success: Boolean!", def.Name)
	}
	return nil
}

func rootName(def *ast.Definition) string {
	if def == nil {
		return " (the schema has none)"
	}
	return " (" + def.Name + ")"
}

func kindTitle(kind string) string {
	switch kind {
	case KindPostgres:
		return "PostgreSQL"
	case KindRedis:
		return "Redis"
	}
	return "NATS"
}

func pathSuffix(p string) string {
	if p == "" {
		return ""
	}
	return " " + p
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// posProblem builds a Problem at a schema position, in the file it names.
func posProblem(pos *ast.Position, format string, a ...any) Problem {
	file := ""
	if pos != nil && pos.Src != nil {
		file = pos.Src.Name
	}
	return problemAt(file, pos, format, a...)
}

// schemaProblems turns a gqlparser schema error into problems, each in the
// file it names (the upstream SDL, the events file).
func schemaProblems(file string, err error) []Problem {
	var list gqlerror.List
	if !errors.As(err, &list) {
		var one *gqlerror.Error
		if !errors.As(err, &one) {
			return []Problem{problemAt(file, nil, "%v", err)}
		}
		list = gqlerror.List{one}
	}
	out := make([]Problem, 0, len(list))
	for _, e := range list {
		f := file
		if name, ok := e.Extensions["file"].(string); ok && name != "" {
			f = name
		}
		out = append(out, gqlErrorProblem(f, e))
	}
	return out
}
