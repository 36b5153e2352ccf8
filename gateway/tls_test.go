package gateway

import (
	"crypto/tls"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/internal/selfsigned"
	"github.com/fireboom/fireboom/upstream/demo"
)

// servedSerial is the serial number of the certificate a new TLS
// connection to addr gets.
func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	// Only the certificate's identity matters here, not whether it is
	// trusted: each reload test swaps in a new self-signed one.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// hupConfig has auth.jwt, so that every operation loads and a reload
// reports no problem.
const hupConfig = `, "auth": {"jwt": {"secret": "s3cret"}}, "subscriptions": {"heartbeat": "1h"}`

// SIGHUP's ReloadConfig re-reads the certificate files: new connections
// get the new certificate while open streams, on connections made with the
// old one, keep flowing. A file that does not load keeps the running
// certificate and says why; turning TLS off needs a restart.
func TestCertificateReloadKeepsStreams(t *testing.T) {
	d := startDemo(t, demo.Options{})
	h := newH2Gateway(t, d, "tls", hupConfig)
	addr := strings.TrimPrefix(h.URL, "https://")
	stream := readSSE(t, h.open2(t, "/operations/chat/MessageCreated?room=hup&wg_sse=true"))
	awaitUpstreamSubs(t, d, 1)
	h.post(t, "hup", "one")
	stream.expectMessages("one")
	if got := servedSerial(t, addr); got.Cmp(h.cert.Leaf.SerialNumber) != 0 {
		t.Fatalf("served serial %v, want the first certificate's %v", got, h.cert.Leaf.SerialNumber)
	}

	// A renewed certificate in the same files.
	renewed, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(h.files.CertFile, renewed.CertPEM)
	write(h.files.KeyFile, renewed.KeyPEM)
	if restart, err := h.ReloadConfig(h.config(t, hupConfig)); err != nil || len(restart) != 0 {
		t.Fatalf("ReloadConfig: restart %v, err %v", restart, err)
	}
	if got := servedSerial(t, addr); got.Cmp(renewed.Leaf.SerialNumber) != 0 {
		t.Errorf("after the reload: served serial %v, want the renewed certificate's %v", got, renewed.Leaf.SerialNumber)
	}
	h.post(t, "hup", "two")
	stream.expectMessages("two") // the stream on the old connection goes on
	if !strings.Contains(h.logs.String(), `msg="certificate reloaded" subject=127.0.0.1`) {
		t.Error("the reload is not logged")
	}

	// A broken file: the renewed certificate stays.
	write(h.files.CertFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"))
	if _, err := h.ReloadConfig(h.config(t, hupConfig)); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, addr); got.Cmp(renewed.Leaf.SerialNumber) != 0 {
		t.Errorf("after a broken file: served serial %v, want the running certificate's %v", got, renewed.Leaf.SerialNumber)
	}
	if !strings.Contains(h.logs.String(), `msg="certificate not reloaded; serving the running one" err="tls.certFile: `+h.files.CertFile) {
		t.Errorf("the refusal is not logged:\n%s", h.logs.String())
	}

	// TLS off: a restart is needed; the certificate is left alone.
	plain, err := config.Parse([]byte(`{"operationsDir": "`+opsDir(t)+`", "upstream": {"url": "`+d.URL()+`"}`+hupConfig+`}`),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	restart, err := h.ReloadConfig(plain)
	if err != nil || !slices.Equal(restart, []string{"tls.certFile", "tls.keyFile"}) {
		t.Errorf("TLS off: restart %v, err %v", restart, err)
	}
	h.post(t, "hup", "three")
	stream.expectMessages("three")
}
