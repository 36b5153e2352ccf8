package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// TLS makes the gateway serve HTTPS: HTTP/2, and HTTP/1.1 for clients
// that ask for it (ALPN). Both files or neither.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first (relative to the
	// config file's folder). Re-read on SIGHUP.
	CertFile string `json:"certFile"`
	// KeyFile is the PEM private key of the leaf certificate (relative to
	// the config file's folder). Re-read on SIGHUP.
	KeyFile string `json:"keyFile"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// HTTP2 tunes HTTP/2. Over TLS it is always on.
type HTTP2 struct {
	// Cleartext accepts HTTP/2 without TLS ("h2c" with prior knowledge),
	// for a proxy such as Envoy that speaks HTTP/2 to its backends, beside
	// HTTP/1.1. Not with tls, which negotiates HTTP/2 by itself.
	Cleartext bool `json:"cleartext"`
}

func (c *Config) validateTLS(bad func(path, format string, a ...any)) {
	t := c.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		bad("tls.keyFile", "required with tls.certFile")
	case t.CertFile == "" && t.KeyFile != "":
		bad("tls.certFile", "required with tls.keyFile")
	}
	if c.HTTP2.Cleartext && (t.CertFile != "" || t.KeyFile != "") {
		bad("http2.cleartext", "not with tls, which serves HTTP/2 by itself")
	}
}

// errNoCertificate: the certificate file holds no PEM certificate.
var errNoCertificate = errors.New("no PEM CERTIFICATE block found")

// LoadKeyPair reads and checks the certificate and key files of t. Its
// errors name the setting at fault ("tls.certFile: open …: no such file or
// directory"); they never hold the files' contents.
func LoadKeyPair(t TLS) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls.certFile: %w", err)
	}
	keyPEM, err := os.ReadFile(t.KeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls.keyFile: %w", err)
	}
	// tls.X509KeyPair does not say which file is wrong: the certificate is
	// parsed on its own first, so that what remains is the key's fault.
	if err := checkCertificate(certPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls.certFile: %s: %w", t.CertFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls.keyFile: %s: %w (it must be the PEM key of the first certificate in tls.certFile)", t.KeyFile, err)
	}
	return pair, nil
}

// checkCertificate parses the first certificate of a PEM chain.
func checkCertificate(b []byte) error {
	for len(b) > 0 {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			_, err := x509.ParseCertificate(block.Bytes)
			return err
		}
	}
	return errNoCertificate
}
