package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/sessions"
)

// liveBeat is how often an idle live stream sends a comment, and re-checks
// that the session's token still holds.
const liveBeat = 15 * time.Second

// change is what a live update says: enough for a page to decide to refresh
// or to tell the reader; the page itself is fetched again to see the rest.
type change struct {
	Sequence     uint64 `json:"sequence"`
	EngagementID string `json:"engagement_id"`
	Type         string `json:"type"`
	Title        string `json:"title"`
	Actor        string `json:"actor"`
}

// changes returns up to 200 changes after sequence after: from the
// projection's memory of recent ones (every open page asks after each
// event), or from the log on the stream when they go back further.
func (u *UI) changes(ctx context.Context, after uint64) ([]projections.Change, error) {
	if c, ok := u.proj.Recent(after, 200); ok {
		return c, nil
	}
	events, err := u.proj.Log(ctx, projections.LogFilter{After: after, Limit: 200})
	if err != nil {
		return nil, err
	}
	out := make([]projections.Change, len(events))
	for i, ev := range events {
		out[i] = projections.Change{Sequence: ev.Sequence, EngagementID: ev.EngagementID, Type: ev.Type, Actor: ev.Actor}
	}
	return out, nil
}

// live: GET /engagements/live[?engagement=id][&after=seq] is a Server-Sent
// Events stream of the changes the projection applies, for the pages' script.
// It follows the projection, not NATS: pages show the projection, so a change
// is announced exactly when a reload would show it. A page asks for the
// changes after the sequence it was rendered at (after), so nothing recorded
// while it loaded is missed; Last-Event-ID, sent when the browser reconnects,
// is newer and wins. The session's cookie authenticates it (EventSource
// cannot send an Authorization header), and a revoked token ends it. A
// malformed engagement, after or Last-Event-ID is a 400 page naming it.
func (u *UI) live(w http.ResponseWriter, r *http.Request, s *session) {
	only, from, bad := liveParams(r)
	if bad != "" {
		// Not a 200: an EventSource stops on any other status rather than
		// follow something the page did not ask for.
		u.errorPage(w, r, s, http.StatusBadRequest, "Live updates could not start", bad)
		return
	}
	after := u.proj.Applied()
	if from.set && from.seq <= after {
		after = from.seq
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(u.ctx, cancel) // Close ends the stream
	defer stop()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(format string, args ...any) bool {
		// A stream outlives the server's write timeout; each write gets its own.
		_ = rc.SetWriteDeadline(time.Now().Add(2 * liveBeat))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: 3000\n: following after sequence %d\n\n", after) {
		return
	}
	for {
		applied := u.proj.Applied()
		events, err := u.changes(ctx, after)
		if err != nil {
			return // the browser reconnects with Last-Event-ID
		}
		for _, ev := range events {
			after = max(after, ev.Sequence)
			if only != "" && ev.EngagementID != only {
				continue
			}
			c := change{Sequence: ev.Sequence, EngagementID: ev.EngagementID, Type: string(ev.Type),
				Title: pastLabel(ev.Type), Actor: ev.Actor}
			b, _ := json.Marshal(c)
			if !send("id: %d\nevent: change\ndata: %s\n\n", ev.Sequence, b) {
				return
			}
		}
		if len(events) == 200 {
			continue // more are waiting
		}
		// Messages the projection skipped (rejected, undecodable) are not in
		// the log but move the sequence too.
		after = max(after, applied)
		wait, done := context.WithTimeout(ctx, liveBeat)
		err = u.proj.WaitFor(wait, after+1)
		done()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !u.stillOpen(s) {
				return
			}
			if !send(": heartbeat\n\n") {
				return
			}
		}
	}
}

// stillOpen reports whether s is still in the sessions bucket (not signed
// out on any instance) and its token still holds. It reads the session
// without counting as a use, so an open page alone does not keep it from
// going idle.
func (u *UI) stillOpen(s *session) bool {
	if _, ok := u.tokens.AuthenticateDigest(s.Token); !ok {
		return false
	}
	ctx, cancel := kvContext()
	defer cancel()
	_, err := u.sessions.Change(ctx, s.ID, func(*sessions.Session) bool { return false })
	return !errors.Is(err, sessions.ErrNotFound)
}

// since is where a live stream starts: after seq, when set.
type since struct {
	seq uint64
	set bool
}

// liveParams reads what a live stream follows: the engagement (every one
// when absent) and the sequence to resume after, from Last-Event-ID or else
// ?after=. bad says, for the reader, what is wrong with a value that is
// present but malformed.
func liveParams(r *http.Request) (only string, from since, bad string) {
	q := r.URL.Query()
	if q.Has("engagement") {
		only = q.Get("engagement")
		if domain.CheckID(only) != nil {
			return "", since{}, fmt.Sprintf("engagement must be the id of an engagement, not %.40q.", only)
		}
	}
	// An empty Last-Event-ID is the same as none (EventSource sends none
	// before its first id).
	name, v := "Last-Event-ID", r.Header.Values("Last-Event-ID")
	if len(v) == 0 || len(v) == 1 && v[0] == "" {
		name, v = "after", q["after"]
	}
	if len(v) == 0 {
		return only, since{}, ""
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil || len(v) > 1 {
		return "", since{}, fmt.Sprintf("%s must be one stream sequence (a whole number), not %.40q.", name, strings.Join(v, ", "))
	}
	return only, since{seq: n, set: true}, ""
}
