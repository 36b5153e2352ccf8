// Package e2e holds the end-to-end tests of the web dashboard. It has no
// code of its own: each test starts the real demo upstream and a real
// gateway over loopback, serving the repository's operations, and drives
// headless Chromium with chromedp through the page a user sees at /.
//
// The tests need a Chromium binary: $FIREBOOM_CHROMIUM, else "chromium" on
// the PATH, else /usr/bin/chromium (Debian's package; .ci/run installs it
// when it is missing). Without one they skip with a message, except when
// the CI environment variable is set (and not "false" or "0"): then they
// fail, so a CI run can never pass without having driven a browser.
//
// The examples' READMEs run here too, as they are written:
// TestPostgresNotifyExample runs examples/postgres-notify's shell blocks
// in bash (a built ./cmd/fireboom, curl, psql) against the PostgreSQL of
// this machine, skipping when it is down unless CI is set.
//
// Every run saves screenshots at desktop (1280×900) and phone (390×844)
// widths into test-output/ at the repository root. With
// FIREBOOM_UPDATE_SCREENSHOT=1 the desktop one is also written to
// docs/dashboard.png, the image the README shows:
//
//	FIREBOOM_UPDATE_SCREENSHOT=1 go test ./e2e/ -run TestScreenshots
package e2e
