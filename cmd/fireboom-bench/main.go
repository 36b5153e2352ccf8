package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage:
  fireboom-bench [run] [-clients N] [-rate R] [-hold D] [-ramp R] [-idle | -distinct N] [flags]
      start a demo upstream and a gateway process (or target one with -gateway URL),
      open the SSE clients in worker processes, and print the figures
  fireboom-bench upstream [-listen ADDR] [-rate R] [-duration D]
      serve the demo upstream ticking at R events/s, with its counters at /stats
  fireboom-bench clients ...
      a worker process of run (not for direct use)

run 'fireboom-bench run -h' for every flag`

// dispatch runs a subcommand and returns the exit code.
func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runBench(args, stdout, stderr)
	case "upstream":
		err = runUpstream(args, stderr)
	case "clients":
		err = runWorker(args, stdin, stdout)
	case "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "fireboom-bench:", err)
		return 1
	}
	return 0
}
