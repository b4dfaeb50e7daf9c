package eventstore

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServiceInboxPrefix is the inbox prefix of the service's own connection:
// its KV watches, JetStream API replies and consumers deliver there. No
// subscriber may subscribe to it.
const ServiceInboxPrefix = "_INBOX_engagements"

// SharedSubscriber is the subscriber name of the shared
// --nats-subscriber-token: its consumers are sub-shared-1…, its inbox
// _INBOX_sub_shared. An API token called "shared" is refused on NATS, so
// that the two never share consumers.
const SharedSubscriber = "shared"

// MaxSubscriberConsumers is how many consumers each subscriber may have:
// they are named sub-<name>-1 … sub-<name>-20.
const MaxSubscriberConsumers = 20

// SubscriberInboxPrefix is the inbox prefix a subscriber called name must
// connect with (nats.CustomInboxPrefix): its replies and push deliveries
// come there, and it may subscribe nowhere else but engagements.>.
func SubscriberInboxPrefix(name string) string { return "_INBOX_sub_" + name }

// SubscriberConsumer is the name of a subscriber's n-th consumer (1 to
// MaxSubscriberConsumers).
func SubscriberConsumer(name string, n int) string { return "sub-" + name + "-" + strconv.Itoa(n) }

// subscriberOf returns the subscriber a consumer name belongs to
// (sub-<name>-<n>), or false.
func subscriberOf(consumer string) (string, bool) {
	rest, ok := strings.CutPrefix(consumer, "sub-")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 1 || n > MaxSubscriberConsumers || rest[i+1:] != strconv.Itoa(n) {
		return "", false
	}
	return rest[:i], true
}

// SubscriberAuthenticator finds the subscriber a presented token belongs
// to (an API token of role subscriber). It is called by the embedded server
// while it authenticates a connection, so it must only read memory.
type SubscriberAuthenticator func(token string) (name string, ok bool)

// natsAuth maps each token of the embedded server's client port to its
// permissions: the service's own in-process connection and the admin token
// may do everything; the shared subscriber token and every API token of
// role subscriber only what subscriberPermissions allow.
type natsAuth struct {
	internal, admin, subscriber string
	lookup                      atomic.Pointer[SubscriberAuthenticator]

	mu      sync.Mutex
	clients map[string]map[uint64]struct{} // subscriber name → client ids seen
}

// subscriberPermissions let the subscriber called name subscribe to
// engagements.> and its own inbox, read the stream's info, create, read,
// pull from and delete its own consumers (sub-<name>-1 … -20) and ack —
// nothing else: no publish, no stream change, no other consumer (the
// service's projector, webhooks and SSE, another subscriber's), no list of
// consumers, no KV bucket (KV_*), no other inbox. Push consumers are
// checked by guardConsumers: permissions cannot see a deliver subject.
func subscriberPermissions(name string) *server.Permissions {
	pub := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + StreamName,
		"$JS.API.DIRECT.GET." + StreamName,
		"$JS.API.DIRECT.GET." + StreamName + ".>",
	}
	for n := 1; n <= MaxSubscriberConsumers; n++ {
		c := StreamName + "." + SubscriberConsumer(name, n)
		pub = append(pub,
			"$JS.API.CONSUMER.CREATE."+c, "$JS.API.CONSUMER.CREATE."+c+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+c,
			"$JS.API.CONSUMER.INFO."+c, "$JS.API.CONSUMER.DELETE."+c,
			"$JS.API.CONSUMER.MSG.NEXT."+c,
			"$JS.ACK."+c+".>", "$JS.FC."+c+".>")
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: pub,
			// Denied outright, whatever the allow list: appends (intake) are
			// the service's alone, and the contract's subjects carry only
			// what the stream republishes.
			Deny: []string{intakeRoot + ".>", subjectRoot + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{subjectRoot + ".>", SubscriberInboxPrefix(name) + ".>"}},
		// Replies (acks) to what the subscriber is delivered.
		Response: &server.ResponsePermission{MaxMsgs: 1},
	}
}

// Check implements server.Authentication.
func (a *natsAuth) Check(c server.ClientAuthentication) bool {
	raw := c.GetOpts().Token
	token := []byte(raw)
	switch {
	case subtle.ConstantTimeCompare(token, []byte(a.internal)) == 1:
		c.RegisterUser(&server.User{Username: "engagements-service"})
	case a.admin != "" && subtle.ConstantTimeCompare(token, []byte(a.admin)) == 1:
		c.RegisterUser(&server.User{Username: "admin"})
	case a.subscriber != "" && subtle.ConstantTimeCompare(token, []byte(a.subscriber)) == 1:
		c.RegisterUser(&server.User{Username: "subscriber:" + SharedSubscriber, Permissions: subscriberPermissions(SharedSubscriber)})
	default:
		f := a.lookup.Load()
		if f == nil {
			return false
		}
		name, ok := (*f)(raw)
		if !ok || name == SharedSubscriber {
			return false
		}
		a.mu.Lock()
		if a.clients[name] == nil {
			a.clients[name] = make(map[uint64]struct{})
		}
		a.clients[name][c.GetID()] = struct{}{}
		a.mu.Unlock()
		c.RegisterUser(&server.User{Username: "subscriber:" + name, Permissions: subscriberPermissions(name)})
	}
	return true
}

// AuthenticateSubscribers makes the embedded server accept the tokens f
// recognises, each as its own subscriber. The shared subscriber token
// (Config.SubscriberToken) keeps working beside them.
func (s *Store) AuthenticateSubscribers(f SubscriberAuthenticator) {
	if s.auth != nil {
		s.auth.lookup.Store(&f)
	}
}

// DisconnectSubscriber closes every connection of the subscriber called
// name (its token was revoked: the authenticator no longer knows it). A
// connection authenticated while the revocation was being applied may not
// be registered yet; a second pass a second later closes it too.
func (s *Store) DisconnectSubscriber(name string) int {
	if s.auth == nil || s.ns == nil {
		return 0
	}
	s.auth.mu.Lock()
	ids := s.auth.clients[name]
	delete(s.auth.clients, name)
	s.auth.mu.Unlock()
	closed := 0
	var missed []uint64
	for id := range ids {
		if err := s.ns.DisconnectClientByID(id); err == nil {
			closed++
		} else {
			missed = append(missed, id)
		}
	}
	if len(missed) > 0 {
		ns := s.ns
		time.AfterFunc(time.Second, func() {
			for _, id := range missed {
				_ = ns.DisconnectClientByID(id) // gone by now, most of them
			}
		})
	}
	if closed > 0 {
		s.log.Info("NATS connections of a revoked subscriber token closed", "subscriber", name, "connections", closed)
	}
	return closed
}

// consumerCreated is the part of a consumer creation advisory read here.
type consumerCreated struct {
	Consumer string `json:"consumer"`
}

// consumerRequest is the part of a consumer create or update request read
// here.
type consumerRequest struct {
	Config struct {
		Name           string `json:"name"`
		Durable        string `json:"durable_name"`
		DeliverSubject string `json:"deliver_subject"`
	} `json:"config"`
}

// guardConsumers deletes every subscriber's push consumer whose deliver
// subject lies outside that subscriber's inbox: permissions cannot see a
// deliver subject (it is in the request's body), so the service watches
// creation advisories and every create or update request, and deletes such
// a consumer as soon as it exists (within milliseconds). The
// subscriptions end with the connection.
func (s *Store) guardConsumers() error {
	check := func(consumer, deliver string) {
		name, ok := subscriberOf(consumer)
		if !ok || deliver == "" || strings.HasPrefix(deliver, SubscriberInboxPrefix(name)+".") {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.stream.DeleteConsumer(ctx, consumer); err == nil {
			s.log.Warn("deleted a subscriber's push consumer that delivered outside its inbox",
				"consumer", consumer, "deliver_subject", deliver)
		}
	}
	onRequest := func(m *nats.Msg) {
		var req consumerRequest
		if json.Unmarshal(m.Data, &req) != nil {
			return
		}
		// $JS.API.CONSUMER[.DURABLE].CREATE.<stream>.<consumer>[.<filter>]
		tok := strings.Split(m.Subject, ".")
		at := 4
		if tok[3] == "DURABLE" {
			at = 5
		}
		if len(tok) <= at+1 {
			return
		}
		check(tok[at+1], req.Config.DeliverSubject)
	}
	onCreated := func(m *nats.Msg) {
		var adv consumerCreated
		if json.Unmarshal(m.Data, &adv) != nil {
			return
		}
		if _, ok := subscriberOf(adv.Consumer); !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := s.stream.Consumer(ctx, adv.Consumer)
		if err != nil {
			return
		}
		check(adv.Consumer, c.CachedInfo().Config.DeliverSubject)
	}
	for subj, h := range map[string]nats.MsgHandler{
		"$JS.API.CONSUMER.CREATE." + StreamName + ".>":             onRequest,
		"$JS.API.CONSUMER.DURABLE.CREATE." + StreamName + ".>":     onRequest,
		"$JS.EVENT.ADVISORY.CONSUMER.CREATED." + StreamName + ".*": onCreated,
	} {
		if _, err := s.nc.Subscribe(subj, h); err != nil {
			return fmt.Errorf("watch consumer creation: %w", err)
		}
	}
	return s.nc.Flush()
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
