package proofs_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iom-who/engagements/proofs"
)

// TestOpenSSLChecksACheckpoint: an auditor with nothing but OpenSSL checks
// a checkpoint's signature over its documented eight lines with the PEM
// public key, and the key file serve writes is one OpenSSL reads.
func TestOpenSSLChecksACheckpoint(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl on this machine")
	}
	f := newFixture(t)
	history(f)
	cp := f.checkpoint()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sig, _ := base64.StdEncoding.DecodeString(cp.Signature)
	pub := write("service.pub", []byte(proofs.PublicPEM(pub(f))))
	lines := "engagements-checkpoint/1\nsequence 8\nroot " + cp.Root + "\nhead " + cp.Head + "\nheads_root " + cp.HeadsRoot +
		"\nengagements 3\ncreated_at " + cp.CreatedAt + "\nkey_id " + cp.KeyID + "\n"
	verify := func(signed string) (string, error) {
		out, err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
			"-in", write("signed.txt", []byte(signed)), "-sigfile", write("sig.bin", sig)).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(lines); err != nil || !strings.Contains(out, "Signature Verified Successfully") {
		t.Fatalf("openssl refuses the checkpoint: %v\n%s", err, out)
	}
	if out, err := verify(strings.Replace(lines, "sequence 8", "sequence 9", 1)); err == nil {
		t.Errorf("openssl accepts an altered checkpoint:\n%s", out)
	}

	// The private key file serve creates is standard PKCS #8.
	keyFile := filepath.Join(dir, "signing.key")
	key, created, err := proofs.LoadOrCreateKey(keyFile, true)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey: %v %v", created, err)
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	out, err := exec.Command(openssl, "pkey", "-in", keyFile, "-pubout").CombinedOutput()
	if want := proofs.PublicPEM(key.Public().(ed25519.PublicKey)); err != nil || string(out) != want {
		t.Errorf("openssl's public key of the key file:\n%s\nwant\n%s (%v)", out, want, err)
	}
	again, created, err := proofs.LoadOrCreateKey(keyFile, true)
	if err != nil || created || !again.Equal(key) {
		t.Errorf("loading the key again: created %v, %v", created, err)
	}
}
