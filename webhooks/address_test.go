package webhooks

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// addressCases are the addresses a webhook may and may not connect to, in
// every spelling that reaches the same host.
var addressCases = []struct {
	name, addr string
	refused    bool
}{
	// Refused before issue 20 and still.
	{"cloud metadata 169.254.169.254", "169.254.169.254", true},
	{"link-local 169.254.1.1", "169.254.1.1", true},
	{"Tencent metadata 169.254.0.23 (link-local)", "169.254.0.23", true},
	{"IPv4 link-local multicast", "224.0.0.251", true},
	{"IPv6 link-local", "fe80::1", true},
	{"IPv6 link-local with a zone", "fe80::a9fe:a9fe%eth0", true},
	{"IPv6 link-local multicast", "ff02::1", true},
	{"IPv4-mapped metadata", "::ffff:169.254.169.254", true},
	{"AWS metadata over IPv6", "fd00:ec2::254", true},

	// Issue 20: IPv4 embedded in IPv6.
	{"NAT64 well-known prefix", "64:ff9b::a9fe:a9fe", true},
	{"NAT64 well-known prefix, dotted", "64:ff9b::169.254.169.254", true},
	{"NAT64 local-use prefix, /96 layout", "64:ff9b:1::a9fe:a9fe", true},
	{"NAT64 local-use prefix, /48 layout", "64:ff9b:1:a9fe:a9:fe00::", true},
	{"NAT64 local-use prefix, /64 layout", "64:ff9b:1:0:a9:fea9:fe00:0", true},
	{"IPv4-compatible", "::a9fe:a9fe", true},
	{"IPv4-compatible, dotted", "::169.254.169.254", true},
	{"IPv4-translated (SIIT)", "::ffff:0:a9fe:a9fe", true},
	{"6to4", "2002:a9fe:a9fe::1", true},
	{"Teredo, client 169.254.169.254 (XOR 0xffffffff)", "2001:0:4136:e378:8000:63bf:5601:5601", true},
	{"Teredo, server 169.254.169.254", "2001:0:a9fe:a9fe::1", true},
	{"ISATAP", "2001:db8::5efe:a9fe:a9fe", true},
	{"ISATAP, universal", "2001:db8::200:5efe:a9fe:a9fe", true},

	// Issue 20: the other clouds' metadata addresses, and their spellings.
	{"Alibaba Cloud metadata", "100.100.100.200", true},
	{"Alibaba Cloud metadata, IPv4-mapped", "::ffff:100.100.100.200", true},
	{"Alibaba Cloud metadata through NAT64", "64:ff9b::6464:64c8", true},
	{"Alibaba Cloud metadata over IPv6", "fd00:100::100:200", true},
	{"Oracle Cloud metadata", "192.0.0.192", true},
	{"Oracle Cloud metadata through 6to4", "2002:c000:c0::1", true},
	{"Oracle Cloud metadata over IPv6", "fd00:c1::a9fe:a9fe", true},
	{"Azure WireServer", "168.63.129.16", true},
	{"AWS EKS Pod Identity over IPv6", "fd00:ec2::23", true},
	{"Google Cloud metadata over IPv6", "fd20:ce::254", true},
	{"Akamai (Linode) metadata over IPv6", "fd00:a9fe:a9fe::1", true},
	{"Scaleway metadata over IPv6", "fd00:42::42", true},

	// Allowed: webhooks may go to private networks and this host.
	{"loopback", "127.0.0.1", false},
	{"IPv6 loopback", "::1", false},
	{"IPv4-mapped loopback", "::ffff:127.0.0.1", false},
	{"private 10/8", "10.1.2.3", false},
	{"private 192.168/16", "192.168.1.1", false},
	{"public IPv4", "8.8.8.8", false},
	{"public IPv6", "2001:db8::1", false},
	{"NAT64 of a public address", "64:ff9b::808:808", false},
	{"6to4 of a public address", "2002:808:808::1", false},
	{"Teredo of a public client", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", false},
	{"next to Alibaba's metadata", "100.100.100.201", false},
	{"next to Oracle's metadata", "192.0.0.193", false},
	{"AWS DNS over IPv6", "fd00:ec2::253", false},
}

func TestBlockedAddresses(t *testing.T) {
	for _, tc := range addressCases {
		t.Run(tc.name, func(t *testing.T) {
			addr := netip.MustParseAddr(tc.addr)
			if got := blocked(addr); got != tc.refused {
				t.Errorf("blocked(%s) = %v, want %v", addr, got, tc.refused)
			}
			// At every connection, after DNS, the dialer asks the same.
			err := guard("tcp", net.JoinHostPort(tc.addr, "443"), nil)
			if got := errors.Is(err, ErrBlockedAddress); got != tc.refused {
				t.Errorf("guard(%s): %v, want refused %v", tc.addr, err, tc.refused)
			}
		})
	}
}

func TestSubscribeRefusesBlockedLiterals(t *testing.T) {
	for _, tc := range addressCases {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.addr
			if netip.MustParseAddr(host).Is6() {
				host = "[" + host + "]"
				if a := netip.MustParseAddr(tc.addr); a.Zone() != "" {
					host = "[" + a.WithZone("").String() + "%25" + a.Zone() + "]"
				}
			}
			msg := checkURL(context.Background(), "https://"+host+":8443/hook", false, net.DefaultResolver)
			if got := msg != ""; got != tc.refused {
				t.Errorf("subscribe to %s: %q, want refused %v", host, msg, tc.refused)
			}
		})
	}
}

func TestDeliveryClientRefusesBlockedAddresses(t *testing.T) {
	c := newClient(Config{Timeout: 2 * time.Second})
	for _, u := range []string{"http://100.100.100.200/latest/meta-data/", "http://192.0.0.192/opc/v2/instance/",
		"http://169.254.169.254/"} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("GET %s: %v, want %v", u, err, ErrBlockedAddress)
		}
	}
}
