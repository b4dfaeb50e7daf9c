package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestDebugListener: the profiles are served on the debug listener, and a
// non-loopback address is refused before anything listens.
func TestDebugListener(t *testing.T) {
	d, err := startDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	resp, err := http.Get("http://" + d.listener.Addr().String() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("heap profile: %d %.200s", resp.StatusCode, body)
	}
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "10.0.0.1:6060", "example.org:6060", "127.0.0.1"} {
		if d, err := startDebug(addr, slog.New(slog.DiscardHandler)); err == nil {
			d.close()
			t.Errorf("startDebug(%q) listened", addr)
		}
	}
}
