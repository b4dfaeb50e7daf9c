package main

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/reminders"
)

// startClusterReminderMain starts a Main on the cluster (replicas 3) with
// short reminder days from origin, on data directory dir.
func startClusterReminderMain(t *testing.T, natsURL, dir string, origin time.Time) *Main {
	t.Helper()
	m := &Main{Config: Config{NATSURL: natsURL, Replicas: 3, DataDir: dir, HTTP: "127.0.0.1:0",
		Sync: eventstore.SyncAlways, Reminders: reminders.Config{Offsets: []int{2, 1}, Day: reminderDay, Origin: origin}}}
	if os.Getenv("REMINDER_DEBUG") != "" {
		m.Config.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("dir", dir)
	}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	return m
}

// TestClusterRemindersExactlyOnce: two instances on a three-node cluster
// share the schedules and the consumers; one is restarted between the
// first reminder and the expiry. Each reminder and the expiry are recorded
// exactly once, by actor system, and both instances show the same history.
func TestClusterRemindersExactlyOnce(t *testing.T) {
	nodes := startCluster(t, 3)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	natsURL := strings.Join(urls, ",")
	origin := time.Now()
	dirs := []string{t.TempDir(), t.TempDir()}
	mains := []*Main{startClusterReminderMain(t, natsURL, dirs[0], origin), startClusterReminderMain(t, natsURL, dirs[1], origin)}
	defer func() {
		for _, m := range mains {
			if err := m.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	}()
	testToken = clusterAdminToken(t, dirs[0])
	hook := newHookReceiver(t)
	hook.subscribe(t, mains[0].URL())

	today := shortToday(origin)
	id := signedAgreement(t, mains[1].URL(), "Clustered MOU", day(origin, -30), day(origin, today+3))
	hook.waitFor(t, 30*time.Second, "the first reminder", func() bool {
		return strings.Contains(strings.Join(hook.of(id), " "), "agreement.expiring:2")
	})
	if err := mains[0].Close(); err != nil {
		t.Fatalf("close instance 1: %v", err)
	}
	mains[0] = startClusterReminderMain(t, natsURL, dirs[0], origin)
	hook.waitFor(t, 60*time.Second, "the expiry", func() bool {
		return strings.Contains(strings.Join(hook.of(id), " "), "agreement.expired")
	})
	want := "engagement.recorded agreement.signed agreement.expiring:2 agreement.expiring:1 agreement.expired"
	if got := strings.Join(hook.of(id), " "); got != want {
		t.Errorf("deliveries:\n got %s\nwant %s", got, want)
	}
	for i, m := range mains {
		var types []string
		waitUntil(t, 10*time.Second, "the expiry in the instance's history", func() bool {
			var h history
			getJSON(t, m.URL()+"/v1/engagements/"+id+"/history", &h)
			types = types[:0]
			for _, ev := range h.Events {
				types = append(types, ev.Type)
				if strings.HasPrefix(ev.Type, "agreement.expir") && ev.Actor != "system" {
					t.Errorf("instance %d: %s by %q", i+1, ev.Type, ev.Actor)
				}
			}
			return slices.Contains(types, "agreement.expired")
		})
		if got, want := strings.Join(types, " "), "engagement.recorded agreement.signed agreement.expiring agreement.expiring agreement.expired"; got != want {
			t.Errorf("instance %d history:\n got %s\nwant %s", i+1, got, want)
		}
	}
}
