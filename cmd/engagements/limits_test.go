package main

import (
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/iom-who/engagements/api"
)

// The server serve runs reads headers past the API's limit, so a 2 MB
// header is the API's 431 problem rather than net/http's plain text.
func TestLargeHeaderIsAProblem(t *testing.T) {
	m := startMain(t, t.TempDir(), false)
	defer m.Close()
	req, err := http.NewRequest(http.MethodGet, m.URL()+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 2<<20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || mt != "application/problem+json" {
		t.Errorf("a 2 MB header: %d %s %.200s, want a 431 problem", resp.StatusCode, mt, body)
	}
	if api.ReadHeaderBytes <= 2<<20 {
		t.Errorf("the server reads %d bytes of headers, fewer than this test sends", api.ReadHeaderBytes)
	}
}
