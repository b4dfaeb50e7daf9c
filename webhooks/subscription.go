package webhooks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
)

// Limits on what a subscription may hold.
const (
	// MaxURL is the longest endpoint URL accepted, in bytes.
	MaxURL = 2048
	// MaxTypes is the most entries a subscription's types may have.
	MaxTypes = 20
	// SecretPrefix starts every signing secret, as in Standard Webhooks.
	SecretPrefix = "whsec_"
	// MinSecret and MaxSecret bound the decoded secret's length in bytes.
	MinSecret, MaxSecret = 24, 64
)

// Subscription is a subscriber's registration as the API shows it: never
// with its secret.
type Subscription struct {
	// ID is the subscription's UUIDv7.
	ID string `json:"id"`
	// Owner is the name of the token that created it.
	Owner string `json:"owner"`
	// URL is the endpoint events are POSTed to.
	URL string `json:"url"`
	// Types are event types or "<prefix>.*", as given.
	Types []string `json:"types"`
	// FromSequence is the first stream sequence the subscription may
	// receive: the one asked for, or the stream's next one at creation.
	FromSequence uint64 `json:"from_sequence"`
	// FromTime is the from_time asked for, if any; FromSequence is then the
	// sequence it named.
	FromTime *time.Time `json:"from_time,omitempty"`
	// SecretSet is always true: the secret is kept but never shown again.
	SecretSet bool      `json:"secret_set"`
	CreatedAt time.Time `json:"created_at"`

	// State is StateActive, StatePaused or StateDeleting.
	State string `json:"state"`
}

// Request is what a subscriber asks for.
type Request struct {
	URL   string
	Types []string
	// Secret is "whsec_" and the base64 of 24 to 64 random bytes.
	Secret string
	// FromSequence, when not 0, backfills from that stream sequence.
	FromSequence uint64
	// FromTime, when not zero, backfills from the first event stored at or
	// after it (not with FromSequence).
	FromTime time.Time
}

// Failure is a dead letter: an event that could not be delivered.
type Failure struct {
	// Sequence is the event's stream sequence.
	Sequence uint64 `json:"sequence"`
	// EventID and Type name the event (empty if it could not be decoded).
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// Attempts is how many times it was POSTed (0: never, see LastError).
	Attempts int `json:"attempts"`
	// LastStatus is the HTTP status of the last attempt (0 without one).
	LastStatus int `json:"last_status,omitempty"`
	// LastError says what went wrong last.
	LastError string    `json:"last_error,omitempty"`
	FailedAt  time.Time `json:"failed_at"`
}

// ErrTooMany means the owner has as many subscriptions as allowed.
var ErrTooMany = errors.New("too many subscriptions")

// ErrBlockedAddress means an endpoint resolves to a link-local or cloud
// metadata address, where a webhook must never go.
var ErrBlockedAddress = errors.New("link-local and metadata addresses are not allowed")

// metadataAddrs are the instance metadata services (and the like) of the
// large clouds that are not link-local already; 169.254.169.254,
// Scaleway's 169.254.42.42, Tencent's 169.254.0.23 and fe80::a9fe:a9fe are.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),      // AWS instance metadata over IPv6
	netip.MustParseAddr("fd00:ec2::23"),       // AWS EKS Pod Identity Agent over IPv6
	netip.MustParseAddr("fd20:ce::254"),       // Google Cloud metadata over IPv6
	netip.MustParseAddr("100.100.100.200"),    // Alibaba Cloud metadata
	netip.MustParseAddr("fd00:100::100:200"),  // Alibaba Cloud metadata over IPv6
	netip.MustParseAddr("192.0.0.192"),        // Oracle Cloud metadata (classic)
	netip.MustParseAddr("fd00:c1::a9fe:a9fe"), // Oracle Cloud metadata over IPv6
	netip.MustParseAddr("168.63.129.16"),      // Azure WireServer (agent, health, secrets)
	netip.MustParseAddr("fd00:a9fe:a9fe::1"),  // Akamai (Linode) metadata over IPv6
	netip.MustParseAddr("fd00:42::42"),        // Scaleway metadata over IPv6
}

// Prefixes of IPv6 addresses that carry an IPv4 address which the network
// may deliver to: a webhook must not reach a blocked IPv4 address through
// one of them.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")           // RFC 4291, deprecated
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 (SIIT)
	nat64          = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052 well-known
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215 local use
	sixToFour      = netip.MustParsePrefix("2002::/16")       // RFC 3056
	teredo         = netip.MustParsePrefix("2001::/32")       // RFC 4380
)

// rfc6052Offsets are where RFC 6052 puts the IPv4 address for each prefix
// length a network may carve out of 64:ff9b:1::/48 (/48, /56, /64, /96):
// the byte offsets of its four octets, skipping byte 8 (bits 64–71).
var rfc6052Offsets = [][4]int{{6, 7, 9, 10}, {7, 9, 10, 11}, {9, 10, 11, 12}, {12, 13, 14, 15}}

// embeddedIPv4 returns the IPv4 addresses that a connection to the IPv6
// address a may end up at: the one IPv4-compatible, SIIT, NAT64, 6to4,
// Teredo (server and client) or ISATAP addresses carry.
func embeddedIPv4(a netip.Addr) []netip.Addr {
	b := a.As16()
	at := func(i, j, k, l int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[j], b[k], b[l]}) }
	var out []netip.Addr
	switch {
	case ipv4Compatible.Contains(a), ipv4Translated.Contains(a), nat64.Contains(a):
		out = append(out, at(12, 13, 14, 15))
	case nat64Local.Contains(a):
		for _, o := range rfc6052Offsets {
			out = append(out, at(o[0], o[1], o[2], o[3]))
		}
	case sixToFour.Contains(a):
		out = append(out, at(2, 3, 4, 5))
	case teredo.Contains(a):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]} // obfuscated: XOR 0xffffffff
		out = append(out, at(4, 5, 6, 7), netip.AddrFrom4(client))
	}
	// ISATAP (RFC 5214): an interface id of 0000:5efe or 0200:5efe and the
	// IPv4 address, in any /64.
	if (b[8]|0x02) == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		out = append(out, at(12, 13, 14, 15))
	}
	return out
}

// blocked reports whether a webhook must not connect to addr: link-local
// (169.254.0.0/16, fe80::/10, and their multicast ranges), a metadata
// service address, or an IPv6 address that embeds a blocked IPv4 one
// (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo, ISATAP).
func blocked(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	if addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() || slices.Contains(metadataAddrs, addr) {
		return true
	}
	if addr.Is4() {
		return false
	}
	return slices.ContainsFunc(embeddedIPv4(addr), blocked)
}

// checkRequest validates req and returns the event types it subscribes to. With allowLinkLocal false it resolves the URL's host and refuses
// it if any address is link-local or metadata.
func checkRequest(ctx context.Context, req Request, allowLinkLocal bool, resolver *net.Resolver) ([]domain.EventType, error) {
	var bad domain.ValidationError
	add := func(field, msg string) {
		bad.Fields = append(bad.Fields, domain.FieldError{Field: field, Message: msg})
	}
	if msg := checkURL(ctx, req.URL, allowLinkLocal, resolver); msg != "" {
		add("url", msg)
	}
	types, msg := eventTypes(req.Types)
	if msg != "" {
		add("types", msg)
	}
	if _, msg := decodeSecret(req.Secret); msg != "" {
		add("secret", msg)
	}
	if len(bad.Fields) > 0 {
		return nil, &bad
	}
	return types, nil
}

// checkURL returns what is wrong with raw as an endpoint, or "".
func checkURL(ctx context.Context, raw string, allowLinkLocal bool, resolver *net.Resolver) string {
	if raw == "" {
		return "is required"
	}
	if len(raw) > MaxURL {
		return fmt.Sprintf("must be at most %d characters", MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return "must be an absolute http or https URL"
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return "must be an http or https URL"
	}
	if u.User != nil {
		return "must not carry credentials; the signature authenticates the sender"
	}
	host := u.Hostname()
	if host == "" {
		return "must name a host"
	}
	if allowLinkLocal {
		return ""
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if blocked(addr) {
			return "must not be a link-local or metadata address (169.254.0.0/16, fe80::/10)"
		}
		return ""
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := resolver.LookupNetIP(lctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return "host does not resolve"
	}
	if slices.ContainsFunc(addrs, blocked) {
		return "host resolves to a link-local or metadata address (169.254.0.0/16, fe80::/10)"
	}
	return ""
}

// eventTypes turns types (event types or "<prefix>.*") into the event types
// of the consumer's filter, each once (JetStream refuses overlapping
// filters), in contract order. A prefix
// wildcard means the event types of that prefix, as ?type= does on the log:
// "agreement.*" is agreement.signed, .renewed and .terminated, not an
// agreement's engagement.* events. It returns what is wrong, or "".
func eventTypes(types []string) ([]domain.EventType, string) {
	if len(types) == 0 || len(types) > MaxTypes {
		return nil, fmt.Sprintf("must list 1 to %d event types or <prefix>.* entries", MaxTypes)
	}
	want := make(map[domain.EventType]bool)
	for i, t := range types {
		matched := typesFor(t)
		if matched == nil {
			return nil, fmt.Sprintf("entry %d: must be an event type or <prefix>.* (engagement, agreement, policy, initiative, meeting)", i+1)
		}
		if slices.Contains(types[:i], t) {
			return nil, fmt.Sprintf("entry %d: listed twice", i+1)
		}
		for _, m := range matched {
			want[m] = true
		}
	}
	var out []domain.EventType
	for _, t := range domain.EventTypes { // contract order, so the result is stable
		if want[t] {
			out = append(out, t)
		}
	}
	return out, ""
}

// typesFor expands an event type or "<prefix>.*"; nil if it names none.
func typesFor(filter string) []domain.EventType {
	if prefix, ok := strings.CutSuffix(filter, ".*"); ok {
		var out []domain.EventType
		for _, t := range domain.EventTypes {
			if t.Prefix() == prefix {
				out = append(out, t)
			}
		}
		return out
	}
	if t, err := domain.ParseEventType(filter); err == nil {
		return []domain.EventType{t}
	}
	return nil
}

// decodeSecret returns the HMAC key in a "whsec_<base64>" secret, or what
// is wrong with it (never the secret itself).
func decodeSecret(secret string) ([]byte, string) {
	const msg = "must be \"whsec_\" followed by the base64 of 24 to 64 random bytes"
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, msg
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil || len(key) < MinSecret || len(key) > MaxSecret {
		return nil, msg
	}
	return key, ""
}
