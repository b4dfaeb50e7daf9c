package eventstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ledger appends valid events through Store.Append as the API does: each
// engagement's next version, the hash of its previous event as PrevHash
// (read back with Store.Event) and its latest subject sequence as expected.
type ledger struct {
	t     *testing.T
	s     *eventstore.Store
	heads map[string]*chainHead
}

// chainHead is where an engagement's chain stands.
type chainHead struct {
	version int
	hash    string // hash of the latest valid event
	seq     uint64 // latest message on the engagement's subjects, valid or not
}

func newLedger(t *testing.T, s *eventstore.Store) *ledger {
	return &ledger{t: t, s: s, heads: map[string]*chainHead{}}
}

// record appends engagement.recorded for a new agreement and returns its id
// and sequence.
func (l *ledger) record() (string, uint64) {
	id := newID()
	l.heads[id] = &chainHead{}
	return id, l.append(id, domain.EngagementRecorded, `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`)
}

// note appends engagement.noted to id.
func (l *ledger) note(id string) uint64 {
	return l.append(id, domain.EngagementNoted, `{"note":"reviewed"}`)
}

func (l *ledger) append(id string, t domain.EventType, data string) uint64 {
	l.t.Helper()
	h := l.heads[id]
	ev := domain.Event{
		ID: newID(), Type: t, EngagementID: id, Kind: domain.KindAgreement, Version: h.version + 1,
		OccurredAt: time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), RecordedAt: time.Now().UTC(), Actor: "test",
		Data: json.RawMessage(data), PrevHash: h.hash,
	}
	seq := mustAppend(l.t, l.s, ev, h.seq)
	stored, err := l.s.Event(l.t.Context(), seq)
	if err != nil {
		l.t.Fatalf("Event %d: %v", seq, err)
	}
	if stored.PrevHash != h.hash || stored.Hash == "" {
		l.t.Fatalf("event %d: prev_hash %q hash %q; want prev_hash %q and a hash", seq, stored.PrevHash, stored.Hash, h.hash)
	}
	h.version, h.hash, h.seq = ev.Version, stored.Hash, seq
	return seq
}

// head is the digest Verify must report: SHA-256 over "<id> <hash>\n" lines
// sorted by id, as its documentation says.
func (l *ledger) head() string {
	ids := make([]string, 0, len(l.heads))
	for id, h := range l.heads {
		if h.version > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	sum := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(sum, "%s %s\n", id, l.heads[id].hash)
	}
	return hex.EncodeToString(sum.Sum(nil))
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func verifyStore(t *testing.T, s *eventstore.Store) domain.Report {
	t.Helper()
	rep, err := s.Verify(t.Context(), nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestVerifyCleanStream(t *testing.T) {
	s := newTestStore(t)

	empty := verifyStore(t, s)
	if !empty.OK || empty.Events != 0 || empty.Engagements != 0 || empty.LastSequence != 0 || len(empty.Problems) != 0 {
		t.Errorf("empty stream: %+v, want ok with nothing in it", empty)
	}
	if sum := sha256.Sum256(nil); empty.Head != hex.EncodeToString(sum[:]) {
		t.Errorf("empty stream head %s, want the SHA-256 of nothing", empty.Head)
	}

	l := newLedger(t, s)
	a, _ := l.record()
	b, _ := l.record()
	l.note(a)
	c, _ := l.record()
	l.note(b)
	l.note(a)
	l.note(c)

	var calls [][2]uint64
	rep, err := s.Verify(t.Context(), func(done, total uint64) { calls = append(calls, [2]uint64{done, total}) })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK || len(rep.Problems) != 0 {
		t.Errorf("clean stream: ok %v, problems %+v", rep.OK, rep.Problems)
	}
	if rep.Events != 7 || rep.Engagements != 3 || rep.LastSequence != 7 {
		t.Errorf("clean stream: %d events, %d engagements, last sequence %d; want 7, 3, 7", rep.Events, rep.Engagements, rep.LastSequence)
	}
	if !hexHash.MatchString(rep.Head) {
		t.Errorf("head %q is not 64 lower-case hex digits", rep.Head)
	}
	if want := l.head(); rep.Head != want {
		t.Errorf("head %s, want %s (SHA-256 of the sorted \"<id> <hash>\" lines)", rep.Head, want)
	}
	if len(calls) == 0 || calls[len(calls)-1] != [2]uint64{7, 7} {
		t.Errorf("progress calls %v, want the last to be (7, 7)", calls)
	}
	if again := verifyStore(t, s); again.Head != rep.Head {
		t.Errorf("head changed between two verifications of the same stream: %s, then %s", rep.Head, again.Head)
	}

	l.note(b)
	after := verifyStore(t, s)
	if !after.OK || after.Events != 8 || after.Engagements != 3 {
		t.Errorf("after one more event: %+v", after)
	}
	if after.Head == rep.Head || after.Head != l.head() {
		t.Errorf("head after a new event %s (was %s), want %s", after.Head, rep.Head, l.head())
	}
}

// publishMsg stores msg straight on the stream with a plain client, under
// msg.Subject (published on its intake subject).
func publishMsg(t *testing.T, js jetstream.JetStream, msg *nats.Msg) uint64 {
	t.Helper()
	msg.Subject = eventstore.IntakeSubject(msg.Subject)
	ack, err := js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatalf("publish to %s: %v", msg.Subject, err)
	}
	return ack.Sequence
}

// forgedEvent is a well-formed CloudEvent for the engagement id at version,
// as a client publishing around the API would write it.
func forgedEvent(t *testing.T, id string, typ domain.EventType, version int, data string) (string, []byte) {
	t.Helper()
	subject, err := eventstore.Subject(domain.KindAgreement, id, typ)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := eventstore.Encode(domain.Event{
		ID: newID(), Type: typ, EngagementID: id, Kind: domain.KindAgreement, Version: version,
		OccurredAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), RecordedAt: time.Now().UTC(), Actor: "mallory",
		Data: json.RawMessage(data),
	})
	if err != nil {
		t.Fatal(err)
	}
	return subject, payload
}

// chained is a message whose hash headers are computed as Append computes them.
func chained(subject string, payload []byte, prevHash string) *nats.Msg {
	msg := nats.NewMsg(subject)
	msg.Data = payload
	if prevHash != "" {
		msg.Header.Set(eventstore.HeaderPrevHash, prevHash)
	}
	msg.Header.Set(eventstore.HeaderHash, eventstore.ChainHash(prevHash, subject, payload))
	return msg
}

// Every kind of message that did not come through Append, or that does not
// continue its engagement, is reported at its own sequence; the events
// after it still verify, and a projection skips it and goes on.
func TestVerifyDetects(t *testing.T) {
	const renewal = `{"renewed_on":"2020-01-01"}`
	tests := []struct {
		name string
		// forge builds the message about engagement a, whose chain stands at h.
		forge func(t *testing.T, a string, h chainHead, js jetstream.JetStream) *nats.Msg
		// undecodable: the projection counts it as undecodable, else as rejected.
		undecodable bool
	}{
		{"CloudEvent without a hash header", func(t *testing.T, a string, h chainHead, _ jetstream.JetStream) *nats.Msg {
			subject, payload := forgedEvent(t, a, domain.AgreementSigned, h.version+1, `{"signed_on":"2020-01-01"}`)
			return &nats.Msg{Subject: subject, Data: payload}
		}, true},
		{"correct hash, prev_hash of another chain", func(t *testing.T, a string, h chainHead, _ jetstream.JetStream) *nats.Msg {
			subject, payload := forgedEvent(t, a, domain.AgreementSigned, h.version+1, `{"signed_on":"2020-01-01"}`)
			return chained(subject, payload, eventstore.ChainHash("", "elsewhere", nil))
		}, false},
		{"correct hash, no prev_hash", func(t *testing.T, a string, h chainHead, _ jetstream.JetStream) *nats.Msg {
			subject, payload := forgedEvent(t, a, domain.AgreementSigned, h.version+1, `{"signed_on":"2020-01-01"}`)
			return chained(subject, payload, "")
		}, false},
		{"payload altered after hashing", func(t *testing.T, a string, h chainHead, _ jetstream.JetStream) *nats.Msg {
			subject, payload := forgedEvent(t, a, domain.AgreementSigned, h.version+1, `{"signed_on":"2020-01-01"}`)
			msg := chained(subject, payload, h.hash)
			msg.Data = []byte(strings.Replace(string(payload), "2020-01-01", "2020-01-02", 1))
			return msg
		}, true},
		{"chained correctly but skips a version", func(t *testing.T, a string, h chainHead, _ jetstream.JetStream) *nats.Msg {
			subject, payload := forgedEvent(t, a, domain.AgreementSigned, h.version+2, `{"signed_on":"2020-01-01"}`)
			return chained(subject, payload, h.hash)
		}, false},
		{"chained correctly but breaks the rules (renew a draft)", func(t *testing.T, a string, h chainHead, _ jetstream.JetStream) *nats.Msg {
			subject, payload := forgedEvent(t, a, domain.AgreementRenewed, h.version+1, renewal)
			return chained(subject, payload, h.hash)
		}, false},
		{"replayed copy of the engagement's latest event", func(t *testing.T, _ string, h chainHead, js jetstream.JetStream) *nats.Msg {
			stream, err := js.Stream(t.Context(), eventstore.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			orig, err := stream.GetMsg(t.Context(), h.seq)
			if err != nil {
				t.Fatal(err)
			}
			// Only the chain headers: the stored ones also hold the
			// original append's expectations, which would refuse the copy.
			msg := nats.NewMsg(orig.Subject)
			msg.Data = orig.Data
			for _, k := range []string{eventstore.HeaderHash, eventstore.HeaderPrevHash} {
				msg.Header.Set(k, orig.Header.Get(k))
			}
			return msg
		}, false},
		{"garbage bytes", func(t *testing.T, a string, _ chainHead, _ jetstream.JetStream) *nats.Msg {
			return &nats.Msg{Subject: "engagements.agreement." + a + ".renewed", Data: []byte("not json")}
		}, true},
		{"envelope that names another engagement", func(t *testing.T, a string, h chainHead, _ jetstream.JetStream) *nats.Msg {
			_, payload := forgedEvent(t, newID(), domain.AgreementSigned, h.version+1, `{"signed_on":"2020-01-01"}`)
			subject, _ := forgedEvent(t, a, domain.AgreementSigned, h.version+1, "{}")
			return chained(subject, payload, h.hash)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, js := newListeningStore(t)
			l := newLedger(t, s)
			a, _ := l.record()
			l.record()
			l.note(a)
			clean := verifyStore(t, s)

			forged := publishMsg(t, js, tt.forge(t, a, *l.heads[a], js))
			l.heads[a].seq = forged // the next append must expect it
			var seq uint64
			rebuild(t, s).Read(a, func(_ *domain.Engagement, last uint64) { seq = last })
			if seq != forged {
				t.Errorf("projection's latest sequence of %s = %d, want the forged %d: the next append must expect it", a, seq, forged)
			}
			if rep := verifyStore(t, s); rep.Head != clean.Head {
				t.Errorf("head moved from %s to %s, but the forged message is no valid event", clean.Head, rep.Head)
			}

			// Later events, on the same engagement and on a new one, verify.
			l.note(a)
			l.record()

			rep := verifyStore(t, s)
			if rep.OK || len(rep.Problems) != 1 {
				t.Fatalf("verify: ok %v, problems %+v; want exactly one, at sequence %d", rep.OK, rep.Problems, forged)
			}
			if p := rep.Problems[0]; p.Sequence != forged || p.EngagementID != a || p.Problem == "" {
				t.Errorf("problem %+v, want one at sequence %d naming engagement %s", p, forged, a)
			}
			if rep.Events != 6 || rep.Engagements != 3 || rep.LastSequence != 6 {
				t.Errorf("verify: %d events, %d engagements, last %d; want 6, 3, 6", rep.Events, rep.Engagements, rep.LastSequence)
			}
			if rep.Head != l.head() {
				t.Errorf("head %s, want %s: the valid chain heads only", rep.Head, l.head())
			}

			// A projection rebuilt from the stream counts the message and
			// applies everything after it.
			p := rebuild(t, s)
			st := p.Stats()
			want := projections.Stats{Applied: 6, Events: 5, Rejected: 1}
			if tt.undecodable {
				want.Rejected, want.Undecodable = 0, 1
			}
			if st != want {
				t.Errorf("projection stats %+v, want %+v", st, want)
			}
			if e, err := p.Get(t.Context(), a, domain.Window{}); err != nil || e.Version() != 3 || e.Status() != domain.StatusDraft || e.Hash() != l.heads[a].hash {
				t.Errorf("engagement %s after the rebuild: %+v, want a draft at version 3 on its real chain", a, e)
			}
			var latest uint64
			p.Read(a, func(_ *domain.Engagement, last uint64) { latest = last })
			if latest != forged+1 {
				t.Errorf("projection's latest sequence of %s = %d, want %d", a, latest, forged+1)
			}
			if p.Count() != 3 {
				t.Errorf("projection has %d engagements, want 3", p.Count())
			}
		})
	}
}

// rebuild folds the whole stream into a fresh projection.
func rebuild(t *testing.T, s *eventstore.Store) *projections.Projector {
	t.Helper()
	p := projections.New(nil)
	for m, err := range s.Read(t.Context(), 0, domain.Filter{}) {
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		p.Handle(m.Sequence, m.Event, m.Err)
	}
	return p
}

// startNATS runs a plain nats-server with JetStream on a free local port.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns
}

// A stream that allows deletes, opened read-only so that the store keeps
// its configuration: messages deleted out of band are reported as missing
// at their sequences.
func TestVerifyReportsDeletedMessages(t *testing.T) {
	tests := []struct {
		name    string
		deleted []uint64
		// problem is the sequence the report names.
		problem uint64
	}{
		{"the first message", []uint64{1}, 1},
		{"one in the middle", []uint64{3}, 3},
		{"the last message", []uint64{4}, 4},
		{"two in a row", []uint64{2, 3}, 2},
		{"all of them", []uint64{1, 2, 3, 4}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := startNATS(t)
			nc, err := nats.Connect(ns.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			// The layout Open makes, without deny-delete: appends come in on
			// the intake subjects.
			stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
				Name: eventstore.StreamName, Subjects: []string{"engagements-intake.>"}, Storage: jetstream.FileStorage,
				SubjectTransform: &jetstream.SubjectTransformConfig{Source: "engagements-intake.>", Destination: "engagements.>"},
			})
			if err != nil {
				t.Fatalf("create stream: %v", err)
			}
			s := openStore(t, eventstore.Config{NATSURL: ns.ClientURL(), ReadOnly: true})
			info, err := stream.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.DenyDelete {
				t.Fatal("a read-only Open changed the stream's configuration to deny deletes")
			}

			// 1 A recorded, 2 B recorded, 3 B noted, 4 C recorded: each
			// deletion takes the latest events of their engagements, so
			// no chain is left dangling and the gap is the only problem.
			l := newLedger(t, s)
			l.record()
			b, _ := l.record()
			l.note(b)
			l.record()

			for _, seq := range tt.deleted {
				if err := stream.DeleteMsg(t.Context(), seq); err != nil {
					t.Fatalf("DeleteMsg %d: %v", seq, err)
				}
			}
			rep := verifyStore(t, s)
			if rep.OK || len(rep.Problems) != 1 {
				t.Fatalf("verify: ok %v, problems %+v; want exactly one, at sequence %d", rep.OK, rep.Problems, tt.problem)
			}
			last := tt.deleted[len(tt.deleted)-1]
			p := rep.Problems[0]
			if p.Sequence != tt.problem || !strings.Contains(p.Problem, fmt.Sprintf("%d to %d are missing", tt.problem, last)) {
				t.Errorf("problem %+v, want messages %d to %d reported missing at sequence %d", p, tt.problem, last, tt.problem)
			}
			if want := uint64(4 - len(tt.deleted)); rep.Events != want || rep.LastSequence != 4 {
				t.Errorf("verify: %d events, last sequence %d; want %d and 4", rep.Events, rep.LastSequence, want)
			}
		})
	}
}
