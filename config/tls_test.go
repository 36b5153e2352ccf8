package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fireboom/fireboom/internal/selfsigned"
)

func TestTLSKeysValidated(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{"upstream":{"demo":true},"tls":{"certFile":"c.pem"}}`, "tls.keyFile: required with tls.certFile"},
		{`{"upstream":{"demo":true},"tls":{"keyFile":"k.pem"}}`, "tls.certFile: required with tls.keyFile"},
		{`{"upstream":{"demo":true},"tls":{"certFile":"c.pem","keyFile":"k.pem"},"http2":{"cleartext":true}}`, "http2.cleartext: not with tls"},
		{`{"upstream":{"demo":true},"tls":{"certFile":1}}`, "tls.certFile: expected string"},
		{`{"upstream":{"demo":true},"tls":{"cert":"c.pem"}}`, "tls.cert: unknown key (known: certFile, keyFile)"},
		{`{"upstream":{"demo":true},"http2":{"cleartext":"yes"}}`, "http2.cleartext: expected boolean"},
		{`{"upstream":{"demo":true},"http2":{"h2c":true}}`, "http2.h2c: unknown key (known: cleartext)"},
	} {
		_, err := Parse([]byte(tc.src), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.src, err, tc.want)
		}
	}
	c, err := Parse([]byte(`{"upstream":{"demo":true},"http2":{"cleartext":true}}`), env(nil))
	if err != nil || !c.HTTP2.Cleartext || c.TLS.Enabled() {
		t.Errorf("cleartext alone: %v %+v", err, c)
	}
}

// Load reads the certificate files, relative to the config's folder, so
// that a bad one is a start-up (and check, and SIGHUP) error naming the
// key at fault.
func TestLoadChecksCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	a, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	b, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.crt", a.CertPEM)
	write("a.key", a.KeyPEM)
	write("b.key", b.KeyPEM)
	write("junk.crt", []byte("not a certificate\n"))
	load := func(cert, key string) (*Config, error) {
		p := filepath.Join(dir, "fireboom.json")
		write("fireboom.json", []byte(`{"upstream":{"demo":true},"tls":{"certFile":"`+cert+`","keyFile":"`+key+`"}}`))
		return Load(p)
	}
	c, err := load("a.crt", "a.key")
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != filepath.Join(dir, "a.crt") || c.TLS.KeyFile != filepath.Join(dir, "a.key") {
		t.Errorf("paths not resolved: %+v", c.TLS)
	}
	pair, err := LoadKeyPair(c.TLS)
	if err != nil || pair.Leaf == nil || pair.Leaf.SerialNumber.Cmp(a.Leaf.SerialNumber) != 0 {
		t.Errorf("LoadKeyPair: %v", err)
	}
	for _, tc := range []struct{ cert, key, want string }{
		{"missing.crt", "a.key", "tls.certFile: open " + filepath.Join(dir, "missing.crt") + ": no such file or directory"},
		{"a.crt", "missing.key", "tls.keyFile: open " + filepath.Join(dir, "missing.key") + ": no such file or directory"},
		{"junk.crt", "a.key", "tls.certFile: " + filepath.Join(dir, "junk.crt") + ": no PEM CERTIFICATE block found"},
		{"a.crt", "junk.crt", "tls.keyFile: " + filepath.Join(dir, "junk.crt") + ": tls: failed to find any PEM data in key input"},
		{"a.crt", "b.key", "tls.keyFile: " + filepath.Join(dir, "b.key") + ": tls: private key does not match public key"},
	} {
		_, err := load(tc.cert, tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s + %s: got %v, want %q", tc.cert, tc.key, err, tc.want)
		}
	}
}

func TestDiffNamesTLSKeys(t *testing.T) {
	a := &Config{TLS: TLS{CertFile: "a.crt", KeyFile: "a.key"}}
	b := &Config{TLS: TLS{CertFile: "b.crt", KeyFile: "a.key"}, HTTP2: HTTP2{Cleartext: true}}
	if got := strings.Join(Diff(a, b), " "); got != "http2.cleartext tls.certFile" {
		t.Errorf("Diff: %q", got)
	}
}
