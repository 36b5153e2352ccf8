package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/operation"
)

// check loads and validates every operation against the upstream schema,
// prints each problem as file:line:col: message, and exits 1 on any.
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
	schema, err := gateway.FetchSchema(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "fireboom: reading the upstream schema:", err)
		return 1
	}
	ops, problems := operation.LoadDir(cfg.OperationsDir, schema)
	for _, p := range problems {
		fmt.Fprintln(stdout, p.String())
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%d operations ok, %d problems\n", len(ops), len(problems))
		return 1
	}
	fmt.Fprintf(stderr, "%d operations ok\n", len(ops))
	return 0
}
