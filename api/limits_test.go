package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/api"
)

// rawRequest writes head (a request line and header fields, without the
// blank line) to ts over its own connection and reads the answer: for what
// net/http's client refuses to send.
func rawRequest(t *testing.T, ts *testServer, head string) response {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	// The server may answer and hang up before it has read everything.
	go func() { _, _ = io.WriteString(conn, head+"\r\n\r\n") }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the answer's body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// Request headers over the API's limit are a 431 problem; what net/http
// refuses before any handler runs (headers past what the server reads at
// all, control characters) is answered by net/http itself, in plain text,
// as README says.
func TestHeaderLimits(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Headers MOU"))
	get := "GET /v1/engagements/" + id + " HTTP/1.1\r\nHost: x"
	big := func(n int) string { return "\r\nX-Big: " + strings.Repeat("a", n) }

	for _, row := range []struct {
		name   string
		head   string
		status int
		// problem is true for an application/problem+json answer; else
		// body is net/http's plain text.
		problem bool
		body    string
	}{
		{"a header just under the limit → 200", get + big(api.MaxHeaderBytes-1024), http.StatusOK, false, ""},
		{"a header of 2 MB → 431 problem", get + big(2<<20), http.StatusRequestHeaderFieldsTooLarge, true, ""},
		{"many header lines over the limit → 431 problem", get + strings.Repeat(big(1000), api.MaxHeaderBytes/1000+1),
			http.StatusRequestHeaderFieldsTooLarge, true, ""},
		{"a header past what the server reads → net/http's 431", get + big(api.ReadHeaderBytes+8192),
			http.StatusRequestHeaderFieldsTooLarge, false, "431 Request Header Fields Too Large"},
		{"a control character in a header value → net/http's 400", get + "\r\nX-Test: a\x01b",
			http.StatusBadRequest, false, "400 Bad Request"},
		{"a control character in a header name → net/http's 400", get + "\r\nX-\x01Test: a",
			http.StatusBadRequest, false, "400 Bad Request"},
	} {
		t.Run(row.name, func(t *testing.T) {
			r := rawRequest(t, ts, row.head)
			if r.status != row.status {
				t.Fatalf("%d %.200s, want %d", r.status, r.body, row.status)
			}
			switch {
			case row.problem:
				checkProblem(t, r, "")
			case row.body != "":
				if mt := mediaType(r.header); mt != "text/plain" || string(r.body) != row.body {
					t.Errorf("%s %q, want net/http's text/plain %q", mt, r.body, row.body)
				}
			}
		})
	}
}
