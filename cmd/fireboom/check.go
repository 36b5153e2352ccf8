package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/operation"
)

// check loads and validates every operation against the upstream schema,
// prints each problem as file:line:col: message, and each "operations" key
// of the config that names no operation as
// <config>: operations.<key>: no such operation, and exits 1 on any.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "fireboom.json", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, stopDemo, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, "fireboom:", err)
		return 1
	}
	defer stopDemo()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, ops, problems, err := gateway.LoadOperations(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "fireboom:", err)
		return 1
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p.String())
	}
	loaded := make(map[string]bool, len(ops))
	for _, op := range ops {
		loaded[op.Name] = true
	}
	unknown := gateway.UnknownOperations(cfg, func(name string) bool {
		if loaded[name] {
			return true
		}
		// A file that does not load is reported above, not as a typo.
		_, err := os.Stat(filepath.Join(cfg.OperationsDir, filepath.FromSlash(name)+operation.FileExt))
		return err == nil
	})
	for _, key := range unknown {
		fmt.Fprintf(stdout, "%s: operations.%s: no such operation\n", *path, key)
	}
	summary := count(len(ops), "operation") + " ok"
	if n := len(problems) + len(unknown); n > 0 {
		fmt.Fprintf(stderr, "%s, %s\n", summary, count(n, "problem"))
		return 1
	}
	fmt.Fprintln(stderr, summary)
	return 0
}

// count writes n and the noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
