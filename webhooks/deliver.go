package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// ContentType is the Content-Type of every delivery: the body is the stored
// structured-mode CloudEvent.
const ContentType = "application/cloudevents+json"

// newClient makes the HTTP client of every delivery: one timeout per
// attempt, no redirects (a 3xx is a failed attempt), no proxy, and, unless
// allowed, no connection to a link-local or metadata address.
func newClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowLinkLocal {
		dialer.Control = guard
	}
	return &http.Client{
		Transport: &http.Transport{
			// A proxy would connect for us, around the address check.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
		},
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// guard refuses a connection to a blocked address when it is made, after
// DNS: a name that resolved to a public address when the subscription was
// created cannot later be pointed at the metadata service.
func guard(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if blocked(addr) {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, addr)
	}
	return nil
}

// ackWait is how long JetStream waits for a verdict on a delivery before it
// hands the event out again; a delivery in progress says so more often.
func (m *Manager) ackWait() time.Duration { return max(30*time.Second, 3*m.cfg.Timeout) }

// deliver runs one subscription's deliveries until ctx ends: it takes one
// event at a time from the durable consumer and POSTs it. When NATS is
// away it tries again after a pause. When the consumer is missing while
// the subscription is still active (someone deleted it, or it was lost
// with a node), it makes the consumer again, starting after the last
// sequence recorded as settled, so no event is lost or skipped.
func (m *Manager) deliver(ctx context.Context, st stored, key []byte) {
	log := m.log.With("subscription", st.ID)
	var t *tracker
	defer func() {
		if t != nil {
			<-t.done
		}
	}()
	for {
		var err error
		if t == nil {
			if t, err = m.newTracker(ctx, st.ID, log); err == nil {
				t.done = make(chan struct{})
				go func() {
					defer close(t.done)
					t.run(ctx)
				}()
			} else {
				t = nil
			}
		}
		if err == nil {
			err = m.consume(ctx, st, key, t, log)
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, domain.ErrNotFound) {
			healed, herr := m.heal(ctx, st, t, log)
			if healed {
				continue
			}
			if herr != nil {
				log.Warn("webhook consumer missing and not recreated; retrying", "err", herr)
			} else {
				log.Debug("webhook consumer not found; waiting", "err", err)
			}
		} else {
			log.Warn("webhook delivery interrupted; retrying", "err", err)
		}
		if !sleep(ctx, min(m.cfg.BackoffMax, 5*time.Second)) {
			return
		}
	}
}

// healDelay is how long a worker waits, once it finds its consumer
// missing, before it makes it again.
const healDelay = 500 * time.Millisecond

// heal makes subscription st's missing consumer again if st is still
// active in the bucket, starting after the last sequence settled, and
// reports whether it did. A subscription being deleted or paused is left
// alone; and should it be marked so while the consumer is being made, the
// new consumer is deleted again, so that none outlives its subscription.
func (m *Manager) heal(ctx context.Context, st stored, t *tracker, log *slog.Logger) (bool, error) {
	active := func() (bool, error) {
		e, err := m.kv.Get(ctx, st.ID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read webhook subscription: %w", eventstore.Unavailable(err))
		}
		cur, err := decodeStored(e.Value())
		if err != nil {
			return false, err
		}
		return cur.State == StateActive, nil
	}
	// JetStream answers a consumer's deletion before it has finished
	// tearing it down; one made again under the same name at once can
	// lose its first delivery to the old one (handed out again only after
	// AckWait). Deletions are rare: wait a moment.
	if !sleep(ctx, healDelay) {
		return false, ctx.Err()
	}
	if ok, err := active(); !ok || err != nil {
		return false, err
	}
	// Another instance sharing the consumer may have made it meanwhile.
	if _, err := m.src.DurableInfo(ctx, consumerName(st.ID)); !errors.Is(err, domain.ErrNotFound) {
		return err == nil, err
	}
	types, msg := eventTypes(st.Types)
	if msg != "" {
		return false, fmt.Errorf("subscription types: %s", msg)
	}
	// Another instance may have delivered meanwhile.
	if err := t.reload(ctx); err != nil {
		return false, err
	}
	from := max(st.FromSequence, t.position()+1)
	if err := m.src.CreateDurable(ctx, consumerName(st.ID), m.consumerConfig(st.ID, types, from)); err != nil {
		// Another instance may have made it first (with the same
		// configuration it is no error); binding it tells.
		return false, err
	}
	if ok, err := active(); !ok || err != nil {
		m.deleteConsumer(st.ID)
		return false, err
	}
	m.recreated.Add(1)
	t.recreated()
	log.Warn("webhook consumer was missing; recreated it", "consumer", consumerName(st.ID), "from_sequence", from)
	return true, nil
}

// consume handles the consumer's events one by one. Each is fetched only
// when the previous one is settled, so none sits unacknowledged in a buffer
// when the manager stops.
func (m *Manager) consume(ctx context.Context, st stored, key []byte, t *tracker, log *slog.Logger) error {
	cons, err := m.src.Durable(ctx, consumerName(st.ID))
	if err != nil {
		return err
	}
	// Whatever the server handed out to this worker and it did not
	// settle goes back at once, not after AckWait.
	defer cons.Stop()
	// Progress recorded before this release, or lost in a failed write,
	// catches up with what the consumer has acknowledged.
	if info, err := m.src.DurableInfo(ctx, consumerName(st.ID)); err == nil {
		t.acknowledged(info.Acknowledged)
	}
	for {
		d, err := cons.Next(ctx)
		if err != nil {
			return err
		}
		m.handle(ctx, st, key, d, t, log)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// handle delivers one event: up to MaxAttempts POSTs with backoff, then a
// failure record; either way it is acknowledged so delivery goes on, and
// the progress records it settled. When the manager stops meanwhile, the
// event is handed back to JetStream.
func (m *Manager) handle(ctx context.Context, st stored, key []byte, d *eventstore.Delivery, t *tracker, log *slog.Logger) {
	seq, ev := d.Sequence, d.Event
	if d.Err != nil {
		log.Warn("webhook not delivered: the stored message fails its checks", "sequence", seq, "err", d.Err)
		f := Failure{Sequence: seq, EventID: ev.ID, Type: string(ev.Type), LastError: "not delivered: " + d.Err.Error()}
		t.failed(seq, f.LastError)
		m.fail(ctx, st, d, f, t, log)
		return
	}
	f := Failure{Sequence: seq, EventID: ev.ID, Type: string(ev.Type)}
	for attempt := 1; ; attempt++ {
		_ = d.InProgress()
		status, err := m.post(ctx, st.URL, key, ev.ID, d.Document())
		if err == nil {
			m.delivered.Add(1)
			log.Debug("webhook delivered", "sequence", seq, "event", ev.ID, "type", ev.Type,
				"attempt", attempt, "status", status)
			// Recorded before the acknowledgement: should the consumer
			// be gone by now, its replacement starts after this event.
			t.settled(seq, true)
			m.settle(ctx, d, log)
			return
		}
		if ctx.Err() != nil {
			_ = d.Nak()
			return
		}
		m.attemptsFailed.Add(1)
		f.Attempts, f.LastStatus, f.LastError = attempt, status, err.Error()
		t.failed(seq, f.LastError)
		log.Debug("webhook attempt failed", "sequence", seq, "event", ev.ID, "attempt", attempt,
			"status", status, "err", err)
		if attempt >= m.cfg.MaxAttempts {
			break
		}
		if !m.wait(ctx, d, m.backoff(attempt)) {
			_ = d.Nak()
			return
		}
	}
	log.Warn("webhook delivery failed; recorded as a failure", "sequence", seq, "event", ev.ID,
		"type", ev.Type, "attempts", f.Attempts, "status", f.LastStatus, "err", f.LastError)
	m.fail(ctx, st, d, f, t, log)
}

// post sends one attempt, signed as Standard Webhooks says, and returns
// the status (0 without a response) and an error unless it was 2xx.
func (m *Manager) post(ctx context.Context, url string, key []byte, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "engagements-webhooks/1")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Signature(key, id, ts, body))
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Reading a little of the body lets the connection be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// settle acknowledges msg and waits for JetStream to confirm, so a
// delivered event is not delivered again after a restart.
func (m *Manager) settle(ctx context.Context, d *eventstore.Delivery, log *slog.Logger) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.Ack(actx); err != nil {
		log.Warn("webhook acknowledgement not confirmed; the event may be delivered again", "err", err)
	}
}

// fail records f as a dead letter, then acknowledges d. If the record
// cannot be kept, the event goes back to JetStream to be tried again.
func (m *Manager) fail(ctx context.Context, st stored, d *eventstore.Delivery, f Failure, t *tracker, log *slog.Logger) {
	if err := m.record(ctx, st.ID, f); err != nil {
		log.Warn("webhook failure not recorded; the event will be tried again", "sequence", f.Sequence, "err", err)
		_ = d.NakWithDelay(m.cfg.BackoffMax)
		return
	}
	m.failed.Add(1)
	t.settled(f.Sequence, false)
	m.settle(ctx, d, log)
}

// backoff is the wait after failed attempt n (1-based): BackoffBase doubled
// n-1 times, at most BackoffMax, of which a random half ("equal jitter"),
// so that many subscriptions failing together do not retry together.
func (m *Manager) backoff(n int) time.Duration {
	d := m.cfg.BackoffMax
	if n-1 < 32 {
		d = min(m.cfg.BackoffBase<<(n-1), m.cfg.BackoffMax)
	}
	if d <= 0 { // overflow
		d = m.cfg.BackoffMax
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// wait sleeps d unless ctx ends first (false), telling JetStream meanwhile
// that the delivery of dl is still in progress.
func (m *Manager) wait(ctx context.Context, dl *eventstore.Delivery, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(m.ackWait() / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-tick.C:
			_ = dl.InProgress()
		}
	}
}

// sleep waits d unless ctx ends first (false).
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
