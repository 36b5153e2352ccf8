package operation

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// FileExt is the extension of stored operation files.
const FileExt = ".graphql"

// internalDir is the folder name that hides the operations under it.
const internalDir = "internal"

// A Check vets a compiled operation against what the operation package does
// not know (the gateway's config); a problem it returns keeps the
// operation from being served, like a compile error.
type Check func(op *Operation) *Problem

// LoadDir compiles every *.graphql file under dir, subfolders included, in
// name order, and runs the checks on each operation that compiled. A file's
// name is its path relative to dir without ".graphql", '/' separated on
// every OS. Files and folders whose name starts with '.' are skipped. Files
// with problems are not returned; the others are.
func LoadDir(dir string, schema *ast.Schema, checks ...Check) ([]*Operation, []Problem) {
	type file struct{ name, path string }
	var (
		files    []file
		problems []Problem
	)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			problems = append(problems, problemAt(p, nil, "cannot read: %v", err))
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), FileExt) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			problems = append(problems, problemAt(p, nil, "cannot name: %v", err))
			return nil
		}
		files = append(files, file{name: filepath.ToSlash(strings.TrimSuffix(rel, FileExt)), path: p})
		return nil
	})
	if err != nil {
		return nil, append(problems, problemAt(dir, nil, "cannot read operations folder: %v", err))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })

	ops := make([]*Operation, 0, len(files))
	for _, f := range files {
		src, err := os.ReadFile(f.path)
		if err != nil {
			problems = append(problems, problemAt(f.path, nil, "cannot read: %v", err))
			continue
		}
		op, probs := Compile(f.name, f.path, src, schema)
		for _, check := range checks {
			if op == nil {
				break
			}
			if p := check(op); p != nil {
				probs, op = append(probs, *p), nil
			}
		}
		problems = append(problems, probs...)
		if op != nil {
			ops = append(ops, op)
		}
	}
	return ops, problems
}

// Compile parses and validates one operation file against schema. name is the
// operation's name ("chat/Messages"), file the path used in problems. On any
// problem the operation is nil.
func Compile(name, file string, src []byte, schema *ast.Schema) (op *Operation, problems []Problem) {
	defer func() {
		// gqlparser is not ours; a bug in it must not take the gateway down
		// while it loads user files.
		if r := recover(); r != nil {
			op = nil
			problems = append(problems, problemAt(file, nil, "internal error while compiling: %v", r))
		}
	}()
	if err := checkName(name); err != nil {
		return nil, []Problem{problemAt(file, nil, "%v", err)}
	}
	if schema == nil {
		return nil, []Problem{problemAt(file, nil, "no schema to validate against (the upstream schema is not loaded, and no events schema is)")}
	}

	doc, err := parser.ParseQuery(&ast.Source{Name: file, Input: string(src)})
	if err != nil {
		return nil, gqlProblems(file, err)
	}
	switch n := len(doc.Operations); {
	case n == 0:
		return nil, []Problem{problemAt(file, nil, "no operation in file; exactly one is needed")}
	case n > 1:
		return nil, []Problem{problemAt(file, doc.Operations[1].Position,
			"file holds %d operations; exactly one is allowed", n)}
	}
	od := doc.Operations[0]

	op = &Operation{
		Name:          name,
		File:          file,
		Kind:          Kind(od.Operation),
		Internal:      isInternal(name),
		OperationName: od.Name,
		schema:        schema,
	}
	problems = append(problems, op.takeOperationDirectives(file, od)...)
	problems = append(problems, op.takeVariableDirectives(file, od)...)
	if len(problems) > 0 {
		return nil, problems
	}

	if probs := op.checkMixed(file, od, doc.Fragments); len(probs) > 0 {
		return nil, probs
	}
	if errs := validator.ValidateWithRules(schema, doc, nil); len(errs) > 0 {
		for _, e := range errs {
			problems = append(problems, gqlErrorProblem(file, e))
		}
		sortProblems(problems)
		return nil, problems
	}
	if probs := op.compileEvent(file, od, doc.Fragments); len(probs) > 0 {
		return nil, probs
	}
	if op.Kind == Subscription {
		if keys := responseKeys(od.SelectionSet, doc.Fragments, map[string]bool{}); len(keys) > 1 {
			return nil, []Problem{problemAt(file, od.Position,
				"a subscription must select exactly one top level field, got %s", strings.Join(keys, ", "))}
		}
	}
	if op.Internal && op.Kind == Subscription {
		return nil, []Problem{problemAt(file, od.Position,
			"a subscription may not be internal (it would never be served)")}
	}

	var buf bytes.Buffer
	formatter.NewFormatter(&buf, formatter.WithIndent("  "), formatter.WithoutDescription()).FormatQueryDocument(doc)
	op.Query = strings.TrimSpace(buf.String())
	if op.Event != nil {
		op.Event.query = op.Query
	}

	if probs := op.buildVariables(file, od); len(probs) > 0 {
		return nil, probs
	}
	op.VariablesSchema = op.variablesSchema()
	return op, nil
}

// responseKeys lists the distinct response keys (alias or name) of the top
// level of a selection set. gqlparser's own rule compares field names only, so
// it lets "a: countdown b: countdown" through.
func responseKeys(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen map[string]bool) []string {
	var keys []string
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			k := s.Alias
			if k == "" {
				k = s.Name
			}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		case *ast.InlineFragment:
			keys = append(keys, responseKeys(s.SelectionSet, frags, seen)...)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil && !seen["..."+s.Name] {
				seen["..."+s.Name] = true
				keys = append(keys, responseKeys(f.SelectionSet, frags, seen)...)
			}
		}
	}
	return keys
}

// checkName accepts names made of [A-Za-z0-9_-] segments separated by '/'.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty operation name")
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" {
			return fmt.Errorf("operation name %q has an empty path segment", name)
		}
		for _, r := range seg {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
			if !ok {
				return fmt.Errorf("operation name %q: only letters, digits, '_', '-' and '/' are allowed", name)
			}
		}
	}
	return nil
}

// isInternal reports whether a folder of the name is "internal".
func isInternal(name string) bool {
	segs := strings.Split(name, "/")
	for _, s := range segs[:len(segs)-1] {
		if s == internalDir {
			return true
		}
	}
	return false
}

// problemAt builds a Problem at pos, or at 1:1 when pos is unknown.
func problemAt(file string, pos *ast.Position, format string, args ...any) Problem {
	p := Problem{File: file, Line: 1, Column: 1, Message: fmt.Sprintf(format, args...)}
	if pos != nil && pos.Line > 0 {
		p.Line = pos.Line
		if pos.Column > 0 {
			p.Column = pos.Column
		}
	}
	return p
}

// gqlProblems turns a parser error into problems.
func gqlProblems(file string, err error) []Problem {
	var list gqlerror.List
	if errors.As(err, &list) {
		out := make([]Problem, 0, len(list))
		for _, e := range list {
			out = append(out, gqlErrorProblem(file, e))
		}
		return out
	}
	var ge *gqlerror.Error
	if errors.As(err, &ge) {
		return []Problem{gqlErrorProblem(file, ge)}
	}
	return []Problem{problemAt(file, nil, "%v", err)}
}

func gqlErrorProblem(file string, e *gqlerror.Error) Problem {
	p := Problem{File: file, Line: 1, Column: 1, Message: e.Message}
	if len(e.Locations) > 0 && e.Locations[0].Line > 0 {
		p.Line = e.Locations[0].Line
		if e.Locations[0].Column > 0 {
			p.Column = e.Locations[0].Column
		}
	}
	return p
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}
