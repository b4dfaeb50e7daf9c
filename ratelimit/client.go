package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
)

// ClientKey is whom a limit per client counts a request against: the
// connection's address, an IPv6 one by its /64 (one host's share). Headers
// such as X-Forwarded-For are not trusted.
func ClientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
