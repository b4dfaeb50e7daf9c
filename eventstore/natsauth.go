package eventstore

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// natsAuth maps each token of the embedded server's client port to its
// permissions: the service's own in-process connection and the admin token
// may do everything; the subscriber token may only read the stream.
type natsAuth struct {
	internal, admin, subscriber string
}

// subscriberPermissions let a subscriber subscribe to engagements.>, read
// stream info, manage its own consumers on ENGAGEMENTS, fetch and ack — and
// nothing else: it cannot publish events, nor update, purge or delete the
// stream or its messages, nor read other buckets (tokens, webhooks). It
// cannot subscribe to the intake subjects (engagements-intake.>) either.
var subscriberPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Allow: []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		"$JS.API.STREAM.INFO." + StreamName,
		"$JS.API.CONSUMER.CREATE." + StreamName + ".>",
		"$JS.API.CONSUMER.CREATE." + StreamName,
		"$JS.API.CONSUMER.DURABLE.CREATE." + StreamName + ".>",
		"$JS.API.CONSUMER.INFO." + StreamName + ".>",
		"$JS.API.CONSUMER.DELETE." + StreamName + ".>",
		"$JS.API.CONSUMER.NAMES." + StreamName,
		"$JS.API.CONSUMER.LIST." + StreamName,
		"$JS.API.CONSUMER.MSG.NEXT." + StreamName + ".>",
		"$JS.API.DIRECT.GET." + StreamName + ".>",
		"$JS.API.DIRECT.GET." + StreamName,
		"$JS.ACK." + StreamName + ".>",
		"$JS.FC." + StreamName + ".>",
	},
		// Denied outright, whatever the allow list: appends (intake) are the
		// service's alone, and the contract's subjects carry only what the
		// stream republishes.
		Deny: []string{intakeRoot + ".>", subjectRoot + ".>"}},
	Subscribe: &server.SubjectPermission{Allow: []string{subjectRoot + ".>", "_INBOX.>", "deliver.>"}},
	// Replies to requests the subscriber makes are always allowed.
	Response: &server.ResponsePermission{MaxMsgs: 1},
}

// Check implements server.Authentication.
func (a *natsAuth) Check(c server.ClientAuthentication) bool {
	token := []byte(c.GetOpts().Token)
	switch {
	case subtle.ConstantTimeCompare(token, []byte(a.internal)) == 1:
		c.RegisterUser(&server.User{Username: "engagements-service"})
	case a.admin != "" && subtle.ConstantTimeCompare(token, []byte(a.admin)) == 1:
		c.RegisterUser(&server.User{Username: "admin"})
	case a.subscriber != "" && subtle.ConstantTimeCompare(token, []byte(a.subscriber)) == 1:
		c.RegisterUser(&server.User{Username: "subscriber", Permissions: subscriberPermissions})
	default:
		return false
	}
	return true
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
