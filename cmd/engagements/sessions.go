package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/sessions"
)

// sessionsCmd: engagements sessions end --identity NAME (--nats-url URL |
// --data DIR) ends every web session of one identity (a person's e-mail or
// subject, or a token's name) on every instance at once.
func sessionsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "end" {
		fmt.Fprintln(stderr, "usage: engagements sessions end --identity NAME (--nats-url URL | --data DIR)")
		return 2
	}
	fs := flag.NewFlagSet("sessions end", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	var identity string
	fs.StringVar(&identity, "identity", "", "whose sessions to end: a person's identity as the top bar shows it (their e-mail, else their subject), or a token's name")
	if ok, code := parseFlags(fs, args[1:], stderr); !ok {
		return code
	}
	identity = strings.TrimSpace(identity)
	if identity == "" {
		fmt.Fprintln(stderr, "engagements sessions end: --identity is required")
		return 2
	}
	return sf.withStore("sessions end", stderr, func(ctx context.Context, store *eventstore.Store) int {
		n, err := sessions.EndIdentityIn(ctx, store.JetStream(), identity)
		if err != nil {
			fmt.Fprintf(stderr, "engagements sessions end: %v (%d ended before)\n", err, n)
			return 1
		}
		fmt.Fprintf(stdout, "ended %d web session(s) of %s\n", n, identity)
		return 0
	})
}
