package operation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// EventOp is the part of an Operation that an event source serves instead
// of the upstream: a subscription whose root field has @listen, or a
// mutation whose root field has @publish. It is immutable.
type EventOp struct {
	// Source is the source's name in fireboom.json "sources".
	Source string
	// Publish is set for a @publish mutation, unset for a @listen
	// subscription.
	Publish bool
	// Field is the root field's name, Key its response key (alias or name).
	Field, Key string
	// Subject: Target is a NATS subject, else a PostgreSQL or Redis channel.
	Subject bool
	// Target is the channel or subject as written, placeholders included
	// ("sensors.{{ args.deviceId }}").
	Target string

	spec  *eventSpec
	field *ast.Field // the operation's root field, arguments as written
	def   *ast.FieldDefinition
	shape *Shape
	query string // the operation's text, part of stream keys
}

// Resolved is an event operation bound to one request's variables: the
// concrete channel or subject, filter and payload. It is immutable and safe
// for concurrent use.
type Resolved struct {
	// Source is the source's name; Channel the concrete channel or subject.
	Source, Channel string
	// Filter keeps the payloads this request wants (@listen).
	Filter Filter
	// Payload is the bytes to publish (@publish): the field's arguments as
	// a JSON object, or its payload template filled with them.
	Payload []byte
	// Result is the answer of a @publish mutation once the source accepted
	// the payload: {"data":{"<key>":{"success":true}}}, shaped by the
	// operation's selection.
	Result []byte
	// Key identifies the stream: requests with equal keys may share one
	// (the same source, operation text and variables).
	Key string

	ev   *EventOp
	vars map[string]any
}

// Apply turns one payload value of the channel (see DecodePayload) into the
// result a client receives, {"data":{"<key>":...}}: nil and no error when
// the filter drops it, an error wrapping ErrBadPayload when it does not fit
// the field's type. v is not modified; Apply is safe for concurrent use.
func (r *Resolved) Apply(v any) ([]byte, error) {
	if !r.Filter.Match(v) {
		return nil, nil
	}
	return r.ev.shape.Apply(v, r.vars)
}

// Resolve binds the operation to a request's variables (the JSON object the
// gateway built: coerced, claims injected). A value that would change the
// structure of a NATS subject (".", "*", ">", whitespace, or empty) is an
// *InputError.
func (e *EventOp) Resolve(vars json.RawMessage) (*Resolved, error) {
	vm := map[string]any{}
	if len(bytes.TrimSpace(vars)) > 0 {
		v, err := decodeJSON(vars)
		if err != nil {
			return nil, fmt.Errorf("operation: variables: %w", err)
		}
		m, ok := v.(map[string]any)
		if !ok && v != nil {
			return nil, fmt.Errorf("operation: variables are not a JSON object")
		}
		if m != nil {
			vm = m
		}
	}
	args, given := e.arguments(vm)
	r := &Resolved{Source: e.Source, ev: e, vars: vm}
	var check func(arg, val string) error
	if e.Subject {
		check = func(arg, val string) error { return e.subjectToken(arg, val) }
	}
	ch, err := e.spec.target.renderText(args, check)
	if err != nil {
		return nil, err
	}
	r.Channel = ch
	for _, f := range e.spec.filter {
		c := Condition{Path: f.path}
		if name, ok := f.tpl.whole(); ok && args[name] == nil {
			c.Null = true
		} else if c.Value, err = f.tpl.renderText(args, nil); err != nil {
			return nil, err
		}
		r.Filter = append(r.Filter, c)
	}
	if e.Publish {
		var b bytes.Buffer
		if e.spec.payload == nil {
			obj := make(map[string]any, len(given))
			for _, name := range given {
				obj[name] = args[name]
			}
			err = writeJSON(&b, obj)
		} else {
			var p []byte
			p, err = e.spec.payload.renderJSON(args)
			b.Write(p)
		}
		if err != nil {
			return nil, err
		}
		r.Payload = b.Bytes()
		if r.Result, err = e.result(vm); err != nil {
			return nil, err
		}
	}
	r.Key = e.Source + "\n" + e.query + "\n" + string(vars)
	return r, nil
}

// result shapes the answer of a publish: true, or {"success": true}.
func (e *EventOp) result(vars map[string]any) ([]byte, error) {
	var v any = map[string]any{"success": true}
	if e.def.Type.NamedType == "Boolean" {
		v = true
	}
	return e.shape.Apply(v, vars)
}

// arguments resolves the root field's arguments with the variables: given
// ones, then declared defaults. given lists the names that have a value,
// null included, in declaration order.
func (e *EventOp) arguments(vars map[string]any) (args map[string]any, given []string) {
	args = map[string]any{}
	for _, ad := range e.def.Arguments {
		if a := e.field.Arguments.ForName(ad.Name); a != nil {
			if v, ok := valueOf(a.Value, vars); ok {
				args[ad.Name] = v
				given = append(given, ad.Name)
				continue
			}
		}
		if ad.DefaultValue != nil {
			if v, err := astToJSON(ad.DefaultValue); err == nil {
				args[ad.Name] = v
				given = append(given, ad.Name)
			}
		}
	}
	return args, given
}

// valueOf computes an argument value with variables; ok is false for a
// variable that was not given (the argument then counts as absent).
func valueOf(v *ast.Value, vars map[string]any) (any, bool) {
	switch v.Kind {
	case ast.Variable:
		x, ok := vars[v.Raw]
		return x, ok
	case ast.ListValue:
		out := make([]any, 0, len(v.Children))
		for _, ch := range v.Children {
			x, _ := valueOf(ch.Value, vars)
			out = append(out, x)
		}
		return out, true
	case ast.ObjectValue:
		out := make(map[string]any, len(v.Children))
		for _, ch := range v.Children {
			if x, ok := valueOf(ch.Value, vars); ok {
				out[ch.Name] = x
			}
		}
		return out, true
	}
	x, err := astToJSON(v)
	return x, err == nil
}

// subjectToken refuses a value that would change a NATS subject's tokens:
// a client must not widen sensors.{{ args.id }} to sensors.> or sensors.*.
func (e *EventOp) subjectToken(arg, val string) error {
	if val != "" && !strings.ContainsAny(val, ".*> \t\r\n") {
		return nil
	}
	fe := FieldError{Message: fmt.Sprintf("argument %s of %s goes into the NATS subject %q: it may not be empty or contain '.', '*', '>' or whitespace", arg, e.Field, e.Target)}
	if a := e.field.Arguments.ForName(arg); a != nil && a.Value.Kind == ast.Variable {
		fe.PropertyPath = "/" + pointerEscape(a.Value.Raw)
		fe.InvalidValue = shown(val)
	}
	return inputError([]FieldError{fe})
}

// rootType is the schema's root type of the operation's kind (nil when the
// schema has none).
func (op *Operation) rootType() *ast.Definition {
	switch op.Kind {
	case Mutation:
		return op.schema.Mutation
	case Subscription:
		return op.schema.Subscription
	}
	return op.schema.Query
}

// splitRoot sorts the top-level fields of od into event fields (@listen,
// @publish) and the others; unknown fields count as others.
func splitRoot(root *ast.Definition, od *ast.OperationDefinition, frags ast.FragmentDefinitionList) (events, plain []*ast.Field) {
	for _, f := range rootFields(od.SelectionSet, frags, map[string]bool{}) {
		if fd := root.Fields.ForName(f.Name); fd != nil && eventDirective(fd) != nil {
			events = append(events, f)
		} else {
			plain = append(plain, f)
		}
	}
	return events, plain
}

func eventDirective(fd *ast.FieldDefinition) *ast.Directive {
	if d := fd.Directives.ForName(dirListen); d != nil {
		return d
	}
	return fd.Directives.ForName(dirPublish)
}

// checkMixed refuses an operation that selects an event field and another
// field, naming both. It runs before validation, whose one-field rule for
// subscriptions would otherwise name neither backend.
func (op *Operation) checkMixed(file string, od *ast.OperationDefinition, frags ast.FragmentDefinitionList) []Problem {
	root := op.rootType()
	if root == nil {
		return nil
	}
	events, plain := splitRoot(root, od, frags)
	if len(events) == 0 || len(plain) == 0 {
		return nil
	}
	e, p := events[0], plain[0]
	name := ""
	if a := eventDirective(root.Fields.ForName(e.Name)).Arguments.ForName("source"); a != nil && a.Value != nil {
		name = a.Value.Raw
	}
	what := "the upstream field " + p.Name
	if p.Name == "__typename" || op.schema.SchemaDirectives.ForName(dirEventsOnly) != nil {
		what = "the field " + p.Name
	}
	return []Problem{problemAt(file, p.Position,
		"%s and the event field %s (source %q) may not be mixed in one operation: write one operation each", what, e.Name, name)}
}

// compileEvent finds the operation's event field, if any, once the
// operation validated: an operation whose root field has @listen or
// @publish becomes an event operation (op.Event). Without an upstream,
// every operation must be one.
func (op *Operation) compileEvent(file string, od *ast.OperationDefinition, frags ast.FragmentDefinitionList) []Problem {
	root := op.rootType()
	if root == nil {
		return nil // validation already refused it
	}
	events, _ := splitRoot(root, od, frags)
	switch {
	case len(events) == 0 && op.schema.SchemaDirectives.ForName(dirEventsOnly) != nil:
		return []Problem{problemAt(file, od.Position,
			"no upstream is configured: only @listen subscriptions and @publish mutations of the events schema can be served")}
	case len(events) == 0:
		return nil
	case len(events) > 1:
		return []Problem{problemAt(file, events[1].Position,
			"an event operation selects its one event field once, got %s and %s", events[0].Name, events[1].Name)}
	}
	f := events[0]
	fd := root.Fields.ForName(f.Name)
	spec, probs := readEvent(op.schema, root, fd, nil)
	if len(probs) > 0 {
		// The schema was checked when it was built; this is a schema
		// that was not built by BuildSchema.
		return []Problem{problemAt(file, f.Position, "field %s: %s", f.Name, probs[0].Message)}
	}
	op.Event = &EventOp{
		Source:  spec.source,
		Publish: spec.publish,
		Field:   f.Name,
		Subject: spec.subject,
		Target:  spec.raw,
		spec:    spec,
		field:   f,
		def:     fd,
		shape:   newShape(op.schema, f, fd),
	}
	op.Event.Key = op.Event.shape.key
	if spec.publish {
		// Shape the answer now, so a selection that cannot fit
		// {"success": true} is a load error, not a 500 at request time.
		if _, err := op.Event.result(nil); err != nil {
			return []Problem{problemAt(file, f.Position, "%v", err)}
		}
	}
	return nil
}

// rootFields lists the fields at the top of a selection set, fragments
// flattened.
func rootFields(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen map[string]bool) []*ast.Field {
	var out []*ast.Field
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			out = append(out, s)
		case *ast.InlineFragment:
			out = append(out, rootFields(s.SelectionSet, frags, seen)...)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil && !seen[s.Name] {
				seen[s.Name] = true
				out = append(out, rootFields(f.SelectionSet, frags, seen)...)
			}
		}
	}
	return out
}
