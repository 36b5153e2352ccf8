package operation

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
)

// Kind is the GraphQL operation type of a stored operation.
type Kind string

// The three operation kinds.
const (
	Query        Kind = "query"
	Mutation     Kind = "mutation"
	Subscription Kind = "subscription"
)

// Operation is one compiled .graphql file. It is immutable after Compile and
// safe for concurrent use.
type Operation struct {
	Name          string // path without .graphql, '/' separated: "chat/Messages"
	File          string // path of the file as loaded
	Kind          Kind
	Internal      bool   // under an internal/ folder: not exposed over HTTP
	OperationName string // GraphQL operation name ("" if anonymous)
	// Query is the text sent upstream: the file's document with the gateway's
	// directives (@requireAuthentication, @rbac, @fromClaim) stripped.
	Query        string
	RequiresAuth bool // @requireAuthentication, @rbac, or any @fromClaim
	// AuthAt is the directive of the file that first asks for a verified
	// token (the earliest @requireAuthentication, @rbac or @fromClaim), for
	// problems about it; zero when RequiresAuth is false.
	AuthAt DirectiveAt
	RBAC   RBAC
	Claims []ClaimVar // variables filled from the verified token
	// VariablesSchema is a JSON Schema (draft 2020-12) object describing the
	// public variables (claim variables excluded). Input object types live in
	// "$defs" and are referenced as "#/$defs/<Type>"; a document embedding it
	// (OpenAPI) must keep or rewrite those references.
	VariablesSchema json.RawMessage
	// Variables describes every declared variable in declaration order,
	// claim variables included (see VariableInfo.FromClaim).
	Variables []VariableInfo
	// Event is set when an event source serves the operation instead of
	// the upstream: a @listen subscription or a @publish mutation.
	Event *EventOp

	schema *ast.Schema
	vars   map[string]*VariableInfo // all variables by name
}

// DirectiveAt is a directive's name (without '@') and its 1-based
// position in its file.
type DirectiveAt struct {
	Name         string
	Line, Column int
}

// needsAuth records that d asks for a verified token, keeping the earliest
// such directive in AuthAt.
func (op *Operation) needsAuth(d *ast.Directive) {
	op.RequiresAuth = true
	at := DirectiveAt{Name: d.Name, Line: 1, Column: 1}
	if d.Position != nil && d.Position.Line > 0 {
		at.Line, at.Column = d.Position.Line, max(d.Position.Column, 1)
	}
	if op.AuthAt.Name == "" || at.Line < op.AuthAt.Line || at.Line == op.AuthAt.Line && at.Column < op.AuthAt.Column {
		op.AuthAt = at
	}
}

// RBAC holds the role lists of an @rbac directive. Empty lists impose nothing.
type RBAC struct {
	RequireMatchAll []string `json:"requireMatchAll,omitempty"`
	RequireMatchAny []string `json:"requireMatchAny,omitempty"`
	DenyMatchAll    []string `json:"denyMatchAll,omitempty"`
	DenyMatchAny    []string `json:"denyMatchAny,omitempty"`
}

// IsZero reports whether no role list is set.
func (r RBAC) IsZero() bool {
	return len(r.RequireMatchAll) == 0 && len(r.RequireMatchAny) == 0 &&
		len(r.DenyMatchAll) == 0 && len(r.DenyMatchAny) == 0
}

// Claim names of @fromClaim(name: SUB | EMAIL | NAME | ROLES). Any other claim
// is a custom dotted JSON path into the token's claims.
const (
	ClaimSub   = "sub"
	ClaimEmail = "email"
	ClaimName  = "name"
	ClaimRoles = "roles"
)

// ClaimVar is a variable declared with @fromClaim: the gateway fills it from
// the verified token, and a client may not send it.
type ClaimVar struct {
	Variable string    // variable name without '$'
	Claim    string    // ClaimSub, ClaimEmail, ClaimName, ClaimRoles, or a custom dotted path
	Type     *ast.Type // declared GraphQL type
}

// VariableInfo describes one declared variable, for documentation (the
// operations index, OpenAPI) and for coercion.
type VariableInfo struct {
	Name        string          // without '$'
	Type        *ast.Type       // declared type; Type.String() gives "[String!]!"
	Required    bool            // non-null without a default: a client must send it
	Default     json.RawMessage // the declared default as JSON, nil when none
	Description string          // the variable definition's description, if any
	FromClaim   string          // the claim it is filled from; "" for a public variable

	def any // decoded default (JSON domain), nil when none
}

// Problem is one reason a file is not served, with a 1-based position.
type Problem struct {
	File    string
	Line    int
	Column  int
	Message string
}

// String renders the problem as "file:line:col: message".
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
}

// Error makes a Problem usable as an error.
func (p Problem) Error() string { return p.String() }

// Errors returned by SchemaFromIntrospection and InjectClaims.
var (
	// ErrIntrospection wraps every failure to turn an introspection answer into a schema.
	ErrIntrospection = errors.New("introspection")
	// ErrSchema wraps SDL that does not parse or validate.
	ErrSchema = errors.New("invalid schema")
	// ErrClaimMissing: a non-null @fromClaim variable's claim is not in the token
	// (the gateway answers 401).
	ErrClaimMissing = errors.New("claim missing from token")
	// ErrClaimInvalid: a claim is present but does not fit the variable's type.
	// It wraps ErrClaimMissing, so errors.Is(err, ErrClaimMissing) holds for both.
	ErrClaimInvalid = fmt.Errorf("%w: claim has the wrong type", ErrClaimMissing)
)

// FieldError is one invalid variable or part of one. PropertyPath is a JSON
// pointer into the variables object ("/filter/author", "/ids/2").
type FieldError struct {
	PropertyPath string `json:"propertyPath"`
	InvalidValue any    `json:"invalidValue,omitempty"`
	Message      string `json:"message"`
}

// InputError is every failure of VariablesFromQuery and VariablesFromJSON; the
// gateway renders it as 400 InputValidationError.
type InputError struct {
	Message string
	Errors  []FieldError
}

// Error returns the summary message.
func (e *InputError) Error() string { return e.Message }
