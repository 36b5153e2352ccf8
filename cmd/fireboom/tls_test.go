//go:build unix

package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fireboom/fireboom/internal/selfsigned"
	"github.com/fireboom/fireboom/upstream/demo"
)

// A fireboom process with tls serves HTTPS with HTTP/2; SIGHUP re-reads the
// certificate files, and a stream opened before keeps flowing; SIGTERM
// still ends it and the process exits 0.
func TestServeTLSAndSIGHUP(t *testing.T) {
	d, err := demo.Start(demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	first, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := first.WriteFiles(dir, "tls"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "fireboom.json", `{"listen": "127.0.0.1:0", "operationsDir": "ops", "upstream": {"url": "`+d.URL()+`"},
		"tls": {"certFile": "tls.crt", "keyFile": "tls.key"}, "subscriptions": {"heartbeat": "1h"}}`)
	writeFile(t, dir, "ops/Room.graphql", "subscription Room($room: String!) { messageCreated(room: $room) { content } }\n")
	writeFile(t, dir, "ops/Post.graphql", "mutation Post($room: String!, $content: String!) { postMessage(room: $room, content: $content) { id } }\n")
	p := startFireboom(t, dir)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("serving %s, want https", p.url)
	}

	p2 := new(http.Protocols)
	p2.SetHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: p2, TLSClientConfig: &tls.Config{RootCAs: first.Pool()}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(p.url + "/operations/Room?room=r&wg_sse=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	stream := bufio.NewReader(resp.Body)
	post := func(content string) {
		t.Helper()
		r, err := client.Post(p.url+"/operations/Post", "application/json", strings.NewReader(`{"room":"r","content":"`+content+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Fatalf("post: %d", r.StatusCode)
		}
	}
	eventually(t, 5*time.Second, "the upstream subscription", func() bool { return d.Stats().ActiveSubscriptions == 1 })
	post("before")
	readUntil(t, stream, `"before"`)

	renewed, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := renewed.WriteFiles(dir, "tls"); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	addr := strings.TrimPrefix(p.url, "https://")
	eventually(t, 5*time.Second, "the renewed certificate served", func() bool {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: renewed.Pool()})
		if err != nil {
			return false // still the first certificate
		}
		conn.Close()
		return true
	})
	post("after") // on the connection made with the first certificate
	readUntil(t, stream, `"after"}}}`+"\n\n")
	if out := p.logs.String(); !strings.Contains(out, `msg="certificate reloaded"`) || strings.Contains(out, "need a restart") {
		t.Errorf("logs:\n%s", out)
	}

	p.signal(t, syscall.SIGTERM)
	if rest, err := io.ReadAll(stream); err != nil || !strings.HasPrefix(string(rest), "retry: 1000\n\n") {
		t.Errorf("the stream at shutdown: %q %v", rest, err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// A certificate that does not load stops serve and fails check, with a
// message naming the key.
func TestBadCertificateIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	cert, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	other, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cert.WriteFiles(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.WriteFiles(dir, "b"); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "fireboom.json", `{"upstream": {"demo": true}, "tls": {"certFile": "a.crt", "keyFile": "b.key"}}`)
	want := "fireboom: " + cfg + ": tls.keyFile: " + filepath.Join(dir, "b.key") + ": tls: private key does not match public key"
	for _, cmd := range []string{"serve", "check"} {
		var stdout, stderr syncBuffer
		if code := run([]string{cmd, "-config", cfg}, &stdout, &stderr); code != 1 || !strings.HasPrefix(stderr.String(), want) {
			t.Errorf("%s: exit %d, stderr %q, want %q…", cmd, code, stderr.String(), want)
		}
	}
}
