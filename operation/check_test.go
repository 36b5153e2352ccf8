package operation

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// AuthAt names the earliest directive that asks for a token, where a
// problem about authentication points (at the directive's name, as other
// directive problems do).
func TestAuthAtIsTheEarliestDirective(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		want DirectiveAt
	}{
		{`query { me { id } }`, DirectiveAt{}},
		{`query @requireAuthentication { me { id } }`, DirectiveAt{"requireAuthentication", 1, 8}},
		{"query @requireAuthentication\n  @rbac(denyMatchAny: [guest]) { me { id } }", DirectiveAt{"requireAuthentication", 1, 8}},
		{"query ($e: String! @fromClaim(name: EMAIL))\n  @rbac(denyMatchAny: [guest]) { search(text: $e) { __typename } }", DirectiveAt{"fromClaim", 1, 21}},
	} {
		if got := mustCompile(t, tc.src).AuthAt; got != tc.want {
			t.Errorf("%s: AuthAt %+v, want %+v", tc.src, got, tc.want)
		}
	}
}

// A Check's problem keeps the operation from being served and takes its
// place among the problems, in file order.
func TestLoadDirChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, src := range map[string]string{
		"A.graphql":        `query { me { id } }`,
		"B.graphql":        "query\n  @requireAuthentication { me { id } }",
		"C/Broken.graphql": `query { nope }`,
		"D.graphql":        `query { me { id } }`,
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var checked []string
	noAuth := func(op *Operation) *Problem {
		checked = append(checked, op.Name)
		if !op.RequiresAuth {
			return nil
		}
		return &Problem{File: op.File, Line: op.AuthAt.Line, Column: op.AuthAt.Column, Message: "@" + op.AuthAt.Name + " is not allowed here"}
	}
	ops, probs := LoadDir(dir, testSchema(t), noAuth)
	var names, got []string
	for _, op := range ops {
		names = append(names, op.Name)
	}
	for _, p := range probs {
		got = append(got, strings.TrimPrefix(p.String(), dir+string(filepath.Separator)))
	}
	if !reflect.DeepEqual(names, []string{"A", "D"}) {
		t.Errorf("served %q", names)
	}
	want := []string{"B.graphql:2:4: @requireAuthentication is not allowed here", `C/Broken.graphql:1:9: Cannot query field "nope" on type "Query".`}
	if len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], want[1]) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if !reflect.DeepEqual(checked, []string{"A", "B", "D"}) {
		t.Errorf("checked %q: only what compiled, once each", checked)
	}
}
