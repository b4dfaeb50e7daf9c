package proofs

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
)

// Key is a public key as GET /v1/keys lists it and a bundle carries it.
type Key struct {
	// KeyID is KeyID of the key.
	KeyID string `json:"key_id"`
	// Algorithm is always "ed25519".
	Algorithm string `json:"algorithm"`
	// PublicKey is the standard base64 of the key's 32 bytes.
	PublicKey string `json:"public_key"`
	// CreatedAt is when the service first signed with it (TimeLayout).
	CreatedAt string `json:"created_at"`
}

// NewKey describes pub.
func NewKey(pub ed25519.PublicKey, createdAt string) Key {
	return Key{KeyID: KeyID(pub), Algorithm: "ed25519", PublicKey: base64.StdEncoding.EncodeToString(pub), CreatedAt: createdAt}
}

// Public decodes the key and checks that KeyID names it.
func (k Key) Public() (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(k.PublicKey)
	if err != nil || len(b) != ed25519.PublicKeySize || k.Algorithm != "ed25519" {
		return nil, fmt.Errorf("key %q: not an ed25519 key as standard base64 of 32 bytes", k.KeyID)
	}
	if KeyID(b) != k.KeyID {
		return nil, fmt.Errorf("key %q: the key id is not that of the key (%s)", k.KeyID, KeyID(b))
	}
	return b, nil
}

// ParsePublicKey reads a public key as an auditor may have been sent it: a
// PEM "PUBLIC KEY" block (PKIX, as openssl writes it), the standard base64
// or hex of the 32 bytes, or the JSON of one key of GET /v1/keys.
func ParsePublicKey(text []byte) (ed25519.PublicKey, error) {
	s := strings.TrimSpace(string(text))
	if block, _ := pem.Decode([]byte(s)); block != nil {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("public key: not an ed25519 key")
		}
		return pub, nil
	}
	if strings.HasPrefix(s, "{") {
		var k Key
		if err := jsonv2.Unmarshal([]byte(s), &k); err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		return k.Public()
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	return nil, errors.New("public key: neither PEM, nor base64 or hex of 32 bytes, nor a key of GET /v1/keys")
}

// PublicPEM is pub as a PEM "PUBLIC KEY" block.
func PublicPEM(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("proofs: " + err.Error()) // an ed25519 key always marshals
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// LoadOrCreateKey reads the Ed25519 private key in path (PEM "PRIVATE
// KEY", PKCS #8), creating it with mode 0600 when create is set and there
// is no file yet. created reports a new key.
func LoadOrCreateKey(path string, create bool) (key ed25519.PrivateKey, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		// O_EXCL: two instances starting at once do not overwrite each other's.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
			_ = f.Close()
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("signing key %s: not a PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("signing key %s: not an ed25519 key", path)
	}
	return key, false, nil
}
