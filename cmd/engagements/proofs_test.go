package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An auditor elsewhere gets a proof file, a bundle and the public key, and
// checks them in a process of their own, with nothing else: no data
// directory, no server, no NATS, no environment.
func TestOfflineProofAndBundleInAFreshProcess(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, true)
	if code, body := postJSON(t, m.URL()+"/v1/checkpoints", ""); code != http.StatusCreated {
		t.Fatalf("POST /v1/checkpoints: %d %v", code, body)
	}
	var engagements list
	getJSON(t, m.URL()+"/v1/engagements?limit=1", &engagements)
	id := engagements.Items[0].ID
	code, proof := getBody(t, m.URL()+"/v1/engagements/"+id+"/proof")
	if code != http.StatusOK {
		t.Fatalf("GET proof: %d %s", code, proof)
	}
	var keys struct {
		Keys []struct {
			PEM string `json:"pem"`
		} `json:"keys"`
	}
	getJSON(t, m.URL()+"/v1/keys", &keys)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "signing.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file: %v %v; want mode 0600", st, err)
	}

	// The stopped serve's data: verify checks the checkpoint too, and the
	// bundle is exported from it.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"verify", "--data", dir}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "1 signed checkpoint(s) valid") {
		t.Fatalf("verify --data: %d %s", code, stderr.String())
	}
	bundlePath := filepath.Join(t.TempDir(), "bundle.ndjson")
	stderr.Reset()
	if code := run([]string{"export", "--bundle", "--data", dir, "--out", bundlePath}, &stdout, &stderr); code != 0 {
		t.Fatalf("export --bundle: %d %s", code, stderr.String())
	}
	bundle, err := os.ReadFile(bundlePath)
	if err != nil {
		t.Fatal(err)
	}

	off := t.TempDir()
	for name, data := range map[string][]byte{"proof.json": proof, "bundle.ndjson": bundle, "key.pem": []byte(keys.Keys[0].PEM),
		"flipped.json": flipByte(proof, len(proof)/2), "tampered.ndjson": tamperBundle(t, bundle)} {
		if err := os.WriteFile(filepath.Join(off, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Dir, cmd.Env = off, []string{"ENGAGEMENTS_TEST_EXEC=1"}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"the proof", []string{"verify", "--proof", "proof.json", "--key", "key.pem"}, 0, "verify: ok, engagement " + id},
		{"the bundle", []string{"verify", "--bundle", "bundle.ndjson", "--key", "key.pem"}, 0, "1 signed checkpoint(s) valid"},
		{"a byte changed in the proof", []string{"verify", "--proof", "flipped.json", "--key", "key.pem"}, 1, "the proof FAILS"},
		{"an event changed in the bundle", []string{"verify", "--bundle", "tampered.ndjson", "--key", "key.pem"}, 1, "problem(s)"},
		{"no key", []string{"verify", "--proof", "proof.json"}, 2, "need --key"},
		{"a key that is no key", []string{"verify", "--proof", "proof.json", "--key", "proof.json"}, 2, "public key"},
		{"both a proof and a store", []string{"verify", "--proof", "proof.json", "--key", "key.pem", "--data", "."}, 2, "no store flags"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := fresh(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.says) {
				t.Errorf("engagements %s: exit %d, want %d saying %q:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.says, out)
			}
		})
	}
}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// tamperBundle changes the note of the bundle's last engagement.noted
// event (its payload, base64), leaving its hash headers as they were.
func tamperBundle(t *testing.T, bundle []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(bundle))
	sc.Buffer(nil, 8<<20)
	var lines []map[string]any
	last := -1
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if ev, ok := l["event"].(map[string]any); ok && strings.HasSuffix(ev["subject"].(string), ".noted") {
			last = len(lines)
		}
		lines = append(lines, l)
	}
	if last < 0 {
		t.Fatal("no note in the bundle")
	}
	ev := lines[last]["event"].(map[string]any)
	ev["payload"] = "e30=" // {}
	for _, l := range lines {
		b, _ := json.Marshal(l)
		out.Write(append(b, '\n'))
	}
	return out.Bytes()
}
