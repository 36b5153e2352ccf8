package gateway

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// A stream outlives its handler (sse.Options.Detach): its request log line
// is written when the stream ends, with the bytes the stream wrote, not
// when the handler returned.
func TestDetachedStreamLogsAtItsEnd(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp := get(t, g.URL+"/operations/Countdown?from=2&interval=300&wg_sse=true")
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	head := readUntil(t, br, `"countdown":2}}`+"\n\n", 5*time.Second)
	line := regexp.MustCompile(`msg=request .*path="?/operations/Countdown[^ ]* status=200 .*bytes=(\d+)`)
	if line.MatchString(g.logs.String()) {
		t.Fatal("the request was logged while its stream is open")
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	body := head + string(rest)
	if !strings.HasSuffix(body, `"countdown":0}}`+"\n\nevent: done\ndata: done\n\n") {
		t.Fatalf("body %q", body)
	}
	eventually(t, 5*time.Second, "the request logged at the stream's end", func() bool {
		m := line.FindStringSubmatch(g.logs.String())
		return m != nil && m[1] == strconv.Itoa(len(body))
	})
	eventually(t, 5*time.Second, "the stream counted as ended", func() bool { return g.streams.Load() == 0 })
}
