package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/config"
)

// TestMain doubles as the fireboom command: with FIREBOOM_TEST_MAIN=1 the
// test binary runs main's run() on its arguments, so the lifecycle tests
// exec a real fireboom process (with the race detector when the tests
// have it) without a separate `go build`.
func TestMain(m *testing.M) {
	if os.Getenv("FIREBOOM_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a goroutine-safe output sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes text to dir/name, making folders.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// `fireboom check` on the repository's operations: all good, exit 0.
func TestCheckRepositoryOperations(t *testing.T) {
	var stdout, stderr syncBuffer
	if code := run([]string{"check", "-config", "../../fireboom.json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if stdout.String() != "" || !strings.HasSuffix(stderr.String(), " operations ok\n") {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

// `fireboom check` on a broken folder: one file:line:col: message line per
// problem on stdout, exit 1.
func TestCheckBrokenOperations(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "fireboom.json", `{"operationsDir": "ops", "upstream": {"demo": true}}`)
	writeFile(t, dir, "ops/Good.graphql", "query Good { serverTime }\n")
	syntax := writeFile(t, dir, "ops/Syntax.graphql", "query Syntax {\n")
	field := writeFile(t, dir, "ops/deep/Field.graphql", "# a comment\nquery Field {\n  nope\n}\n")
	var stdout, stderr syncBuffer
	if code := run([]string{"check", "-config", filepath.Join(dir, "fireboom.json")}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	// Sorted by operation name ("Syntax" < "deep/Field").
	want := syntax + ":2:1: Expected Name, found <EOF>\n" +
		field + ":3:3: Cannot query field \"nope\" on type \"Query\".\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got := stderr.String(); got != "1 operation ok, 2 problems\n" {
		t.Errorf("stderr %q", got)
	}
}

// `fireboom check` reports an "operations" key of fireboom.json that names
// no operation (a typo), and exits 1; a key naming a file that does not
// load is reported as that file's problem only.
func TestCheckUnknownOperationSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "fireboom.json", `{"operationsDir": "ops", "upstream": {"demo": true},
		"operations": {"Good": {"liveInterval": "1s"}, "Goood": {}, "Broken": {}, "deep/Nope": {}}}`)
	writeFile(t, dir, "ops/Good.graphql", "query Good { serverTime }\n")
	broken := writeFile(t, dir, "ops/Broken.graphql", "query Broken {\n")
	var stdout, stderr syncBuffer
	if code := run([]string{"check", "-config", cfg}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	want := broken + ":2:1: Expected Name, found <EOF>\n" +
		cfg + ": operations.Goood: no such operation\n" +
		cfg + ": operations.deep/Nope: no such operation\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got := stderr.String(); got != "1 operation ok, 3 problems\n" {
		t.Errorf("stderr %q", got)
	}
}

// Without auth.jwt tokens are passed upstream unchecked, so an operation
// that needs a verified token is a problem for check too, at its
// directive.
func TestCheckOperationNeedingTokenWithoutJWT(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "fireboom.json", `{"operationsDir": "ops", "upstream": {"demo": true, "forwardHeaders": ["Authorization"]}}`)
	writeFile(t, dir, "ops/Open.graphql", "query Open { serverTime }\n")
	guarded := writeFile(t, dir, "ops/Guarded.graphql", "query Guarded @requireAuthentication { serverTime }\n")
	var stdout, stderr syncBuffer
	if code := run([]string{"check", "-config", cfg}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	want := guarded + ":1:16: @requireAuthentication needs a verified token, but auth.jwt has no secret or jwksUrl: " +
		"without one the gateway checks no token and only passes tokens upstream\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got := stderr.String(); got != "1 operation ok, 1 problem\n" {
		t.Errorf("stderr %q", got)
	}
}

// The summary counts in the singular for one.
func TestCheckSummaryPlural(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{"A"}, "1 operation ok\n"},
		{[]string{"A", "B"}, "2 operations ok\n"},
	} {
		dir := t.TempDir()
		cfg := writeFile(t, dir, "fireboom.json", `{"operationsDir": "ops", "upstream": {"demo": true}, "operations": {"A": {}}}`)
		for _, name := range tc.files {
			writeFile(t, dir, "ops/"+name+".graphql", "query "+name+" { serverTime }\n")
		}
		var stdout, stderr syncBuffer
		if code := run([]string{"check", "-config", cfg}, &stdout, &stderr); code != 0 || stdout.String() != "" || stderr.String() != tc.want {
			t.Errorf("%v: exit %d stdout %q stderr %q, want %q", tc.files, code, stdout.String(), stderr.String(), tc.want)
		}
	}
}

// The log format and level come from the config: JSON lines or text, and
// nothing below the level.
func TestLoggerFormatAndLevel(t *testing.T) {
	for _, c := range []struct{ format, level string }{{"json", "warn"}, {"text", "debug"}, {"json", "info"}} {
		var buf syncBuffer
		cfg := &config.Config{Log: config.Log{Format: c.format, Level: c.level}}
		log, level := newLogger(cfg, &buf)
		log.Debug("d", "k", 1)
		log.Info("i")
		log.Warn("w")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		var msgs []string
		for _, line := range lines {
			if c.format == "json" {
				var m struct{ Msg, Level string }
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("%s: not a JSON line: %q", c.format, line)
				}
				msgs = append(msgs, m.Msg)
			} else {
				if !strings.HasPrefix(line, "time=") {
					t.Fatalf("not a text line: %q", line)
				}
				_, msg, _ := strings.Cut(line, " msg=")
				msg, _, _ = strings.Cut(msg, " ")
				msgs = append(msgs, msg)
			}
		}
		want := map[string]string{"debug": "d i w", "info": "i w", "warn": "w"}[c.level]
		if got := strings.Join(msgs, " "); got != want {
			t.Errorf("%s/%s: logged %q, want %q", c.format, c.level, got, want)
		}
		// SIGHUP changes the level through the LevelVar.
		level.Set(-4)
		if log.Handler().Enabled(t.Context(), -4) != true {
			t.Errorf("%s: LevelVar change not applied", c.format)
		}
	}
}
