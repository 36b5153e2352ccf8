package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/openapi"
)

// openAPI prints the OpenAPI 3.1 document of the config's operations, the
// same document the gateway serves at /openapi.json. Operations that do not
// load are reported on stderr and left out, as the gateway leaves them out.
func openAPI(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("openapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "fireboom.json", "config file")
	server := fs.String("server", "", `the document's server URL (default "http://" + the config's listen address)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, stopDemo, err := loadConfig(*path)
	if err != nil {
		return err
	}
	defer stopDemo()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema, ops, problems, err := gateway.LoadOperations(ctx, cfg)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, "not documented:", p.String())
	}
	opt := gateway.OpenAPIOptions(cfg)
	opt.ServerURL = *server
	if opt.ServerURL == "" {
		opt.ServerURL = "http://" + cfg.Listen
	}
	doc, err := openapi.Build(ops, schema, opt)
	if err != nil {
		return err
	}
	_, err = stdout.Write(doc)
	return err
}
