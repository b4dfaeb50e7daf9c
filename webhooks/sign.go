package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// The Standard Webhooks headers every delivery carries.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Signature is the webhook-signature value for one delivery:
// "v1," and the base64 of HMAC-SHA256(key, id "." timestamp "." body), where
// key is the secret after "whsec_", base64-decoded, and timestamp is the
// webhook-timestamp header (unix seconds) as sent.
func Signature(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
