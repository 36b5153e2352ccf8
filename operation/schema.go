package operation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// IntrospectionQuery is the standard full introspection query (as GraphiQL
// sends it). It asks for the subscription type, deprecated fields and enum
// values, and nests ofType 9 levels deep. It leaves out the newer fields
// (description on __schema, specifiedByURL, isRepeatable, isOneOf and
// includeDeprecated on args and inputFields) so that older servers answer it.
const IntrospectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      locations
      args { ...InputValue }
    }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  fields(includeDeprecated: true) {
    name
    description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}`

// ParseSchemaSDL parses and validates a schema written in SDL. The built-in
// scalars and directives are added; the SDL must not declare them again.
func ParseSchemaSDL(sdl string) (*ast.Schema, error) {
	s, err := validator.LoadSchema(validator.Prelude, &ast.Source{Name: "schema.graphql", Input: sdl})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	return s, nil
}

// SchemaFromIntrospection turns the upstream's answer to IntrospectionQuery
// ({"data":{"__schema":...}}) into a validated schema. Errors in the answer
// are reported as an error.
func SchemaFromIntrospection(body []byte) (*ast.Schema, error) {
	sdl, err := SDLFromIntrospection(body)
	if err != nil {
		return nil, err
	}
	s, err := validator.LoadSchema(validator.Prelude, &ast.Source{Name: "introspection.graphql", Input: sdl})
	if err != nil {
		return nil, fmt.Errorf("%w: schema does not validate: %v", ErrIntrospection, err)
	}
	return s, nil
}

type introAnswer struct {
	Data *struct {
		Schema *introSchema `json:"__schema"`
	} `json:"data"`
	Schema *introSchema `json:"__schema"` // a bare saved {"__schema":...} works too
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

type introSchema struct {
	QueryType        *introRef        `json:"queryType"`
	MutationType     *introRef        `json:"mutationType"`
	SubscriptionType *introRef        `json:"subscriptionType"`
	Types            []introType      `json:"types"`
	Directives       []introDirective `json:"directives"`
}

type introType struct {
	Kind          string       `json:"kind"`
	Name          string       `json:"name"`
	Description   string       `json:"description"`
	Fields        []introField `json:"fields"`
	InputFields   []introInput `json:"inputFields"`
	Interfaces    []introRef   `json:"interfaces"`
	EnumValues    []introEnum  `json:"enumValues"`
	PossibleTypes []introRef   `json:"possibleTypes"`
}

type introField struct {
	Name              string       `json:"name"`
	Description       string       `json:"description"`
	Args              []introInput `json:"args"`
	Type              *introRef    `json:"type"`
	IsDeprecated      bool         `json:"isDeprecated"`
	DeprecationReason *string      `json:"deprecationReason"`
}

type introInput struct {
	Name              string    `json:"name"`
	Description       string    `json:"description"`
	Type              *introRef `json:"type"`
	DefaultValue      *string   `json:"defaultValue"`
	IsDeprecated      bool      `json:"isDeprecated"`
	DeprecationReason *string   `json:"deprecationReason"`
}

type introEnum struct {
	Name              string  `json:"name"`
	Description       string  `json:"description"`
	IsDeprecated      bool    `json:"isDeprecated"`
	DeprecationReason *string `json:"deprecationReason"`
}

type introDirective struct {
	Name         string       `json:"name"`
	Description  string       `json:"description"`
	Locations    []string     `json:"locations"`
	Args         []introInput `json:"args"`
	IsRepeatable bool         `json:"isRepeatable"`
}

type introRef struct {
	Kind   string    `json:"kind"`
	Name   string    `json:"name"`
	OfType *introRef `json:"ofType"`
}

var gqlName = regexp.MustCompile(`^[_A-Za-z][_0-9A-Za-z]*$`)

var builtinScalars = map[string]bool{"String": true, "Int": true, "Float": true, "Boolean": true, "ID": true}

// SDLFromIntrospection renders an introspection answer as SDL, without the
// built-in scalars, directives and introspection types.
func SDLFromIntrospection(body []byte) (string, error) {
	var ans introAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return "", fmt.Errorf("%w: malformed answer: %v", ErrIntrospection, err)
	}
	if len(ans.Errors) > 0 {
		msgs := make([]string, len(ans.Errors))
		for i, e := range ans.Errors {
			msgs[i] = e.Message
		}
		return "", fmt.Errorf("%w: upstream answered with errors: %s", ErrIntrospection, short(strings.Join(msgs, "; ")))
	}
	s := ans.Schema
	if ans.Data != nil && ans.Data.Schema != nil {
		s = ans.Data.Schema
	}
	if s == nil {
		return "", fmt.Errorf("%w: answer holds no data.__schema", ErrIntrospection)
	}
	if s.QueryType == nil || s.QueryType.Name == "" {
		return "", fmt.Errorf("%w: schema has no query type", ErrIntrospection)
	}
	w := &sdlWriter{}
	w.schema(s)
	if w.err != nil {
		return "", fmt.Errorf("%w: %v", ErrIntrospection, w.err)
	}
	return w.b.String(), nil
}

// sdlWriter writes SDL, checking every name and default value it copies from
// the answer so that the answer cannot smuggle in SDL of its own.
type sdlWriter struct {
	b   strings.Builder
	err error
}

func (w *sdlWriter) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

func (w *sdlWriter) name(n string) {
	if !gqlName.MatchString(n) {
		w.fail("invalid name %q", short(n))
		return
	}
	w.b.WriteString(n)
}

func (w *sdlWriter) description(d, indent string) {
	if d == "" {
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d) // a string always encodes
	w.b.WriteString(indent)
	w.b.Write(bytes.TrimRight(buf.Bytes(), "\n"))
	w.b.WriteString("\n")
}

func (w *sdlWriter) schema(s *introSchema) {
	w.b.WriteString("schema {\n  query: ")
	w.name(s.QueryType.Name)
	if s.MutationType != nil && s.MutationType.Name != "" {
		w.b.WriteString("\n  mutation: ")
		w.name(s.MutationType.Name)
	}
	if s.SubscriptionType != nil && s.SubscriptionType.Name != "" {
		w.b.WriteString("\n  subscription: ")
		w.name(s.SubscriptionType.Name)
	}
	w.b.WriteString("\n}\n")

	for i := range s.Types {
		t := &s.Types[i]
		if strings.HasPrefix(t.Name, "__") || (t.Kind == "SCALAR" && builtinScalars[t.Name]) {
			continue
		}
		w.b.WriteString("\n")
		w.typ(t)
	}
	prelude := map[string]bool{}
	for _, d := range validator.PreludeDocument().Directives {
		prelude[d.Name] = true
	}
	for i := range s.Directives {
		d := &s.Directives[i]
		if prelude[d.Name] {
			continue
		}
		w.b.WriteString("\n")
		w.description(d.Description, "")
		w.b.WriteString("directive @")
		w.name(d.Name)
		w.args(d.Args)
		if d.IsRepeatable {
			w.b.WriteString(" repeatable")
		}
		w.b.WriteString(" on ")
		if len(d.Locations) == 0 {
			w.fail("directive @%s has no locations", d.Name)
		}
		for j, l := range d.Locations {
			if j > 0 {
				w.b.WriteString(" | ")
			}
			w.name(l)
		}
		w.b.WriteString("\n")
	}
}

func (w *sdlWriter) typ(t *introType) {
	w.description(t.Description, "")
	switch t.Kind {
	case "SCALAR":
		w.b.WriteString("scalar ")
		w.name(t.Name)
		w.b.WriteString("\n")
	case "OBJECT", "INTERFACE":
		if t.Kind == "OBJECT" {
			w.b.WriteString("type ")
		} else {
			w.b.WriteString("interface ")
		}
		w.name(t.Name)
		for i, in := range t.Interfaces {
			if i == 0 {
				w.b.WriteString(" implements ")
			} else {
				w.b.WriteString(" & ")
			}
			w.name(in.Name)
		}
		w.b.WriteString(" {\n")
		for _, f := range t.Fields {
			w.description(f.Description, "  ")
			w.b.WriteString("  ")
			w.name(f.Name)
			w.args(f.Args)
			w.b.WriteString(": ")
			w.ref(f.Type, 0)
			w.deprecated(f.IsDeprecated, f.DeprecationReason)
			w.b.WriteString("\n")
		}
		w.b.WriteString("}\n")
	case "UNION":
		w.b.WriteString("union ")
		w.name(t.Name)
		for i, p := range t.PossibleTypes {
			if i == 0 {
				w.b.WriteString(" = ")
			} else {
				w.b.WriteString(" | ")
			}
			w.name(p.Name)
		}
		w.b.WriteString("\n")
	case "ENUM":
		w.b.WriteString("enum ")
		w.name(t.Name)
		w.b.WriteString(" {\n")
		for _, e := range t.EnumValues {
			w.description(e.Description, "  ")
			w.b.WriteString("  ")
			w.name(e.Name)
			w.deprecated(e.IsDeprecated, e.DeprecationReason)
			w.b.WriteString("\n")
		}
		w.b.WriteString("}\n")
	case "INPUT_OBJECT":
		w.b.WriteString("input ")
		w.name(t.Name)
		w.b.WriteString(" {\n")
		for i := range t.InputFields {
			w.b.WriteString("  ")
			w.input(&t.InputFields[i], "  ")
			w.b.WriteString("\n")
		}
		w.b.WriteString("}\n")
	default:
		w.fail("type %s has unknown kind %q", short(t.Name), short(t.Kind))
	}
}

func (w *sdlWriter) args(args []introInput) {
	if len(args) == 0 {
		return
	}
	w.b.WriteString("(\n")
	for i := range args {
		w.b.WriteString("    ")
		w.input(&args[i], "    ")
		w.b.WriteString("\n")
	}
	w.b.WriteString("  )")
}

func (w *sdlWriter) input(in *introInput, indent string) {
	if in.Description != "" {
		w.b.WriteString("\n")
		w.description(in.Description, indent)
		w.b.WriteString(indent)
	}
	w.name(in.Name)
	w.b.WriteString(": ")
	w.ref(in.Type, 0)
	if in.DefaultValue != nil {
		if err := checkLiteral(*in.DefaultValue); err != nil {
			w.fail("default value of %s: %v", in.Name, err)
			return
		}
		w.b.WriteString(" = ")
		w.b.WriteString(*in.DefaultValue)
	}
	w.deprecated(in.IsDeprecated, in.DeprecationReason)
}

func (w *sdlWriter) deprecated(is bool, reason *string) {
	if !is {
		return
	}
	w.b.WriteString(" @deprecated")
	if reason != nil {
		w.b.WriteString("(reason: ")
		w.description(*reason, "")
		// description ends with a newline; GraphQL ignores it inside ( ).
		w.b.WriteString(")")
	}
}

func (w *sdlWriter) ref(r *introRef, depth int) {
	if r == nil || depth > 32 {
		w.fail("incomplete type reference")
		return
	}
	switch r.Kind {
	case "NON_NULL":
		w.ref(r.OfType, depth+1)
		w.b.WriteString("!")
	case "LIST":
		w.b.WriteString("[")
		w.ref(r.OfType, depth+1)
		w.b.WriteString("]")
	default:
		w.name(r.Name)
	}
}

// checkLiteral makes sure text is exactly one constant GraphQL value.
func checkLiteral(text string) error {
	doc, err := parser.ParseQuery(&ast.Source{Input: "{f(a: " + text + "\n)}"})
	if err != nil {
		return fmt.Errorf("not a GraphQL value: %q", short(text))
	}
	if len(doc.Operations) != 1 || len(doc.Fragments) != 0 || len(doc.Operations[0].SelectionSet) != 1 {
		return fmt.Errorf("not a GraphQL value: %q", short(text))
	}
	f, ok := doc.Operations[0].SelectionSet[0].(*ast.Field)
	if !ok || f.Name != "f" || len(f.Arguments) != 1 || f.Arguments[0].Name != "a" || len(f.Directives) != 0 || len(f.SelectionSet) != 0 {
		return fmt.Errorf("not a GraphQL value: %q", short(text))
	}
	if _, err := astToJSON(f.Arguments[0].Value); err != nil {
		return err
	}
	return nil
}
