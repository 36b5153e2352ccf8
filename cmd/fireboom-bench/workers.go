package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// workerProc is one "fireboom-bench clients" process.
type workerProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	n     int

	mu       sync.Mutex
	progress workerMsg
	reports  chan workerMsg
	exited   chan struct{} // closed when the process has exited
	waitErr  error
}

// startWorkers spreads n clients over processes of at most perProc
// clients each, with ramp clients/s in total.
func startWorkers(ctx context.Context, c *runConfig, addr, path, bearer string) ([]*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	procs := (c.clients + c.perProc - 1) / c.perProc
	lifetime := c.deadline()
	var ws []*workerProc
	first := 0
	for p := range procs {
		n := c.clients / procs
		if p < c.clients%procs {
			n++
		}
		args := []string{"clients",
			"-addr", addr, "-path", path, "-n", strconv.Itoa(n), "-first", strconv.Itoa(first),
			"-ramp", strconv.FormatFloat(c.ramp/float64(procs), 'f', -1, 64),
			"-sources", strconv.Itoa(c.sources), "-lifetime", lifetime.String(),
		}
		if bearer != "" {
			args = append(args, "-bearer", bearer)
		}
		args = append(args, c.h2WorkerArgs()...)
		if c.source != "" {
			args = append(args, "-users", strconv.Itoa(c.users), "-jwt-secret", c.secret)
		}
		if c.toolProfile != "" {
			args = append(args, "-cpuprofile", fmt.Sprintf("%s.%d", c.toolProfile, p))
		}
		w, err := startWorker(exe, args, n)
		if err != nil {
			stopWorkers(ws)
			return nil, err
		}
		ws = append(ws, w)
		first += n
	}
	return ws, nil
}

func startWorker(exe string, args []string, n int) (*workerProc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	// The worker dies with the tool, whatever happens to the tool.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a client worker: %w", err)
	}
	w := &workerProc{cmd: cmd, stdin: stdin, n: n, reports: make(chan workerMsg, 4), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			var m workerMsg
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch m.Type {
			case "progress":
				w.mu.Lock()
				w.progress = m
				w.mu.Unlock()
			case "report":
				w.reports <- m
			}
		}
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	return w, nil
}

func (w *workerProc) send(cmd string) {
	_, _ = io.WriteString(w.stdin, cmd+"\n")
}

func (w *workerProc) last() workerMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.progress
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

// progressOf sums the workers' latest progress lines.
func progressOf(ws []*workerProc) (connected, failed, ended int64, exited int) {
	for _, w := range ws {
		p := w.last()
		connected += p.Connected
		failed += p.Failed
		ended += p.Ended
		select {
		case <-w.exited:
			exited++
		default:
		}
	}
	return
}

// collectReports asks every worker for its report.
func collectReports(ws []*workerProc, timeout time.Duration) ([]workerMsg, error) {
	for _, w := range ws {
		w.send("report")
	}
	deadline := time.After(timeout)
	out := make([]workerMsg, 0, len(ws))
	for _, w := range ws {
		select {
		case m := <-w.reports:
			out = append(out, m)
		case <-w.exited:
			return out, fmt.Errorf("a client worker exited early: %v", w.waitErr)
		case <-deadline:
			return out, fmt.Errorf("no report from a client worker within %s", timeout)
		}
	}
	return out, nil
}

// stopWorkers tells every worker to quit and waits (killing after 15 s).
func stopWorkers(ws []*workerProc) {
	for _, w := range ws {
		w.send("quit")
		_ = w.stdin.Close()
	}
	for _, w := range ws {
		select {
		case <-w.exited:
		case <-time.After(15 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
	}
}
