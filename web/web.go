package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// AssetsPrefix is the URL path under which the dashboard's assets are served.
const AssetsPrefix = "/assets/"

// ContentSecurityPolicy is sent with every answer of the handler. The page
// loads scripts, styles and images from its own origin only, talks only to
// its own origin (fetch and EventSource), may not be framed, and enforces
// Trusted Types so that no string can be parsed as HTML.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

// Cache-Control values: the page and unversioned assets are revalidated
// (cheap, thanks to ETags); versioned assets never change.
const (
	cacheRevalidate = "no-cache"
	cacheImmutable  = "public, max-age=31536000, immutable"
)

// assetsPlaceholder is replaced in index.html by the versioned assets path.
const assetsPlaceholder = "{{ASSETS}}"

type file struct {
	body        []byte
	etag        string
	contentType string
}

type site struct {
	version string
	index   file
	assets  map[string]file // key: path below static/assets, '/' separated
}

var (
	once     sync.Once
	built    *site
	buildErr error
)

// Handler returns the handler serving the dashboard page at / and its assets
// under /assets/. It is safe for concurrent use and may be called repeatedly.
func Handler() http.Handler {
	once.Do(func() { built, buildErr = build(static) })
	if buildErr != nil {
		// Only reachable with a broken embed, which the package tests catch.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "dashboard unavailable", http.StatusInternalServerError)
		})
	}
	return built
}

func build(fsys fs.FS) (*site, error) {
	s := &site{assets: map[string]file{}}
	var names []string
	err := fs.WalkDir(fsys, "static/assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/assets/")
		s.assets[name] = newFile(name, b)
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: reading assets: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%s\x00", n, s.assets[n].etag)
	}
	s.version = hex.EncodeToString(h.Sum(nil))[:12]

	idx, err := fs.ReadFile(fsys, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: reading index: %w", err)
	}
	idx = bytes.ReplaceAll(idx, []byte(assetsPlaceholder), []byte(AssetsPrefix+s.version))
	s.index = newFile("index.html", idx)
	return s, nil
}

func newFile(name string, b []byte) file {
	sum := sha256.Sum256(b)
	return file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: contentType(name)}
}

// contentType is explicit rather than read from the system's MIME tables,
// which differ between machines (some map .js to text/plain, and browsers
// refuse such module scripts under nosniff).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	case ".woff2":
		return "font/woff2"
	default:
		return "application/octet-stream"
	}
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")

	f, cache, ok := s.lookup(r.URL.Path)
	if !ok {
		// Whatever the method: a path the gateway does not serve (such as
		// POST /_/token outside development mode) does not exist.
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.serve(w, r, f, cache)
}

// lookup finds the file for a request path, and its Cache-Control.
func (s *site) lookup(p string) (file, string, bool) {
	switch {
	case p == "/" || p == "/index.html":
		return s.index, cacheRevalidate, true
	case strings.HasPrefix(p, AssetsPrefix):
		name, cache := strings.TrimPrefix(p, AssetsPrefix), cacheRevalidate
		if rest, ok := strings.CutPrefix(name, s.version+"/"); ok {
			name, cache = rest, cacheImmutable
		}
		// Only exact embedded file names match: no directory listing, and
		// no path cleaning that could reach outside static/assets.
		f, ok := s.assets[name]
		return f, cache, ok
	default:
		return file{}, "", false
	}
}

func (s *site) serve(w http.ResponseWriter, r *http.Request, f file, cache string) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", cache)
	h.Set("ETag", f.etag)
	// ServeContent answers If-None-Match with 304, handles HEAD and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
