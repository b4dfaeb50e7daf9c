// Command oidc-provider runs a small OpenID Provider on this machine to try
// directory sign-in with: zitadel's certified OP with three people in it,
// the password of each "verysecure" (see README, "Sign in with your
// directory"). It keeps everything in memory; it is no directory for
// production.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/iom-who/engagements/openid/openidtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9998", "listen address; the issuer is http://<addr>")
	clientID := flag.String("client-id", "engagements", "the client id to register")
	secret := flag.String("client-secret", "engagements-secret", "its client secret")
	service := flag.String("service", "http://127.0.0.1:8080", "the engagements service's public URL (comma-separated for several)")
	flag.Parse()
	users := []openidtest.User{
		{ID: "u-amina", Username: "amina", Email: "amina@who.example", EmailVerified: true, Groups: []string{"staff", "engagement-coordinators"}},
		{ID: "u-noah", Username: "noah", Email: "noah@iom.example", EmailVerified: true, Groups: []string{"staff", "engagement-auditors"}},
		{ID: "u-guest", Username: "guest", Email: "guest@who.example", EmailVerified: true, Groups: []string{"staff"}},
	}
	p, err := openidtest.New(*addr, users...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(1)
	}
	defer p.Close()
	p.AddClient(*clientID, *secret, strings.Split(*service, ",")...)
	fmt.Printf("issuer %s, client %s (secret %s) for %s\n", p.Issuer, *clientID, *secret, *service)
	for _, u := range users {
		fmt.Printf("  %-6s password %s, groups %s\n", u.Username, openidtest.Password, strings.Join(u.Groups, ", "))
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
}
