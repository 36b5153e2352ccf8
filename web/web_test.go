package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkSecurityHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
		t.Errorf("CSP = %q", got)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", got)
	}
}

func TestIndex(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/", "/index.html"} {
		res := get(t, http.MethodGet, p)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", p, cc)
		}
		if res.Header.Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", p)
		}
		checkSecurityHeaders(t, res)
		b := body(t, res)
		if strings.Contains(b, assetsPlaceholder) {
			t.Errorf("GET %s: placeholder left in the page", p)
		}
		if !strings.Contains(b, `data-testid="op-list"`) {
			t.Errorf("GET %s: no operations list in the page", p)
		}
	}
}

func TestCSPIsStrict(t *testing.T) {
	t.Parallel()
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:", "data:"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("CSP allows %q", bad)
		}
	}
}

// The page must work under its own CSP: no inline scripts, styles or
// event handlers, and no links to other origins for resources.
func TestIndexHasNothingInline(t *testing.T) {
	t.Parallel()
	b := body(t, get(t, http.MethodGet, "/"))
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`),                         // inline script body
		regexp.MustCompile(`<style`),                                                // style element
		regexp.MustCompile(`\sstyle=`),                                              // style attribute
		regexp.MustCompile(`\son[a-z]+=`),                                           // inline event handler
		regexp.MustCompile(`<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//`), // resource from elsewhere
		regexp.MustCompile(`<script[^>]+src="(?:[^/"]|//)[^"]*"`),                   // script not from this origin's path
	} {
		if m := re.FindString(b); m != "" {
			t.Errorf("index.html has %q (matches %s)", m, re)
		}
	}
}

func TestAssetsReferencedByIndexAreServed(t *testing.T) {
	t.Parallel()
	b := body(t, get(t, http.MethodGet, "/"))
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(b, -1)
	if len(refs) < 3 {
		t.Fatalf("index references %d assets, want script, stylesheet and icon", len(refs))
	}
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for _, r := range refs {
		p := r[1]
		res := get(t, http.MethodGet, p)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", p, res.StatusCode)
			continue
		}
		for ext, ct := range want {
			if strings.HasSuffix(p, ext) && res.Header.Get("Content-Type") != ct {
				t.Errorf("GET %s: Content-Type %q, want %q", p, res.Header.Get("Content-Type"), ct)
			}
		}
		if cc := res.Header.Get("Cache-Control"); cc != cacheImmutable {
			t.Errorf("GET %s: versioned asset Cache-Control %q", p, cc)
		}
		checkSecurityHeaders(t, res)
	}
}

// Every module imported by a module must exist: a missing file would only
// show up as a blank page in a browser.
func TestModuleImportsResolve(t *testing.T) {
	t.Parallel()
	imp := regexp.MustCompile(`(?m)^import\s[^;]*?from\s+'\./([^']+)';`)
	n := 0
	err := fs.WalkDir(static, "static/assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		src, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		for _, m := range imp.FindAllStringSubmatch(string(src), -1) {
			n++
			if res := get(t, http.MethodGet, "/assets/"+m[1]); res.StatusCode != http.StatusOK {
				t.Errorf("%s imports ./%s: status %d", p, m[1], res.StatusCode)
			}
		}
		if strings.Contains(string(src), "innerHTML") && !strings.Contains(p, "dom.js") {
			t.Errorf("%s uses innerHTML", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no imports found: the pattern is out of date")
	}
}

func TestUnversionedAssetRevalidates(t *testing.T) {
	t.Parallel()
	res := get(t, http.MethodGet, "/assets/app.js")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q", cc)
	}
	etag := res.Header.Get("ETag")
	res = get(t, http.MethodGet, "/assets/app.js", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}
}

func TestNotFoundAndNoListing(t *testing.T) {
	t.Parallel()
	b := body(t, get(t, http.MethodGet, "/"))
	version := regexp.MustCompile(`/assets/([0-9a-f]{12})/`).FindStringSubmatch(b)
	if version == nil {
		t.Fatal("no versioned asset path in the page")
	}
	for _, p := range []string{
		"/assets/", "/assets", "/assets/" + version[1] + "/", "/assets/" + version[1],
		"/assets/nope.js", "/assets/../index.html", "/assets/%2e%2e/web.go", "/static/index.html",
		"/web.go", "/favicon.ico", "/index.htm", "/assets//app.js",
	} {
		res := get(t, http.MethodGet, p)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff on 404", p)
		}
		if got := body(t, res); strings.Contains(got, "<a href") || strings.Contains(got, "app.js") {
			t.Errorf("GET %s: looks like a listing: %q", p, got)
		}
	}
}

// TestModulesPreloaded keeps index.html's modulepreload list complete:
// every JavaScript module but the entry point is fetched with the page.
func TestModulesPreloaded(t *testing.T) {
	t.Parallel()
	page := body(t, get(t, http.MethodGet, "/"))
	entries, err := fs.ReadDir(static, "static/assets")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".js") || name == "app.js" {
			continue
		}
		n++
		if want := `<link rel="modulepreload" href="` + AssetsPrefix + built.version + "/" + name + `">`; !strings.Contains(page, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if got := strings.Count(page, `rel="modulepreload"`); got != n {
		t.Errorf("%d modulepreload links for %d modules", got, n)
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	res := get(t, http.MethodHead, "/")
	if res.StatusCode != http.StatusOK || body(t, res) != "" {
		t.Errorf("HEAD /: status %d", res.StatusCode)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		res := get(t, m, "/")
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /: status %d", m, res.StatusCode)
		}
		if res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: Allow %q", m, res.Header.Get("Allow"))
		}
	}
	// A path the handler does not serve is 404 whatever the method: the
	// gateway mounts it last, so POST /_/token without development mode
	// must not look like an endpoint that exists.
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		for _, p := range []string{"/_/token", "/nope", "/assets/nope.js"} {
			if res := get(t, m, p); res.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: status %d, want 404", m, p, res.StatusCode)
			}
		}
	}
}

func TestBuildVersionFollowsContent(t *testing.T) {
	t.Parallel()
	mk := func(js string) *site {
		s, err := build(fstest.MapFS{
			"static/index.html":    {Data: []byte(`<script src="{{ASSETS}}/app.js"></script>`)},
			"static/assets/app.js": {Data: []byte(js)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := mk("a()"), mk("b()")
	if a.version == b.version {
		t.Error("version did not change with the content")
	}
	if want := `<script src="/assets/` + a.version + `/app.js"></script>`; string(a.index.body) != want {
		t.Errorf("index = %q, want %q", a.index.body, want)
	}
	if _, err := build(fstest.MapFS{"static/assets/app.js": {Data: []byte("x")}}); err == nil {
		t.Error("build without index.html: no error")
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"a.html": "text/html; charset=utf-8", "a.js": "text/javascript; charset=utf-8",
		"a.css": "text/css; charset=utf-8", "a.svg": "image/svg+xml", "a.bin": "application/octet-stream",
	} {
		if got := contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
}
