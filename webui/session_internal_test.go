package webui

import (
	"net/http"
	"testing"
)

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ name, remote, want string }{
		{"IPv4 → the address", "192.0.2.10:51234", "192.0.2.10"},
		{"IPv4-mapped IPv6 → the IPv4 address", "[::ffff:192.0.2.10]:51234", "192.0.2.10"},
		{"IPv6 → its /64", "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"},
		{"another address of that /64 → the same key", "[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"},
		{"IPv6 with a zone → its /64", "[fe80::1%eth0]:443", "fe80::/64"},
		{"no port → as given", "192.0.2.10", "192.0.2.10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientKey(&http.Request{RemoteAddr: tc.remote}); got != tc.want {
				t.Errorf("clientKey(%q) = %q, want %q", tc.remote, got, tc.want)
			}
		})
	}
}
