package proofs_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/proofs"
	"github.com/nats-io/nats.go"
)

// history appends three engagements' interleaved events and returns a, the
// one with four.
func history(f *fixture) (a string) {
	a = f.record()
	b := f.record()
	f.note(a, "one")
	c := f.record()
	f.note(b, "one")
	f.note(a, "two")
	f.note(c, "one")
	f.note(a, "three")
	return a
}

func pub(f *fixture) ed25519.PublicKey { return f.key.Public().(ed25519.PublicKey) }

func bundleReport(t *testing.T, f *fixture, keys ...ed25519.PublicKey) domain.Report {
	t.Helper()
	recs, err := f.ledger.Records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := proofs.WriteBundle(t.Context(), &buf, f.store, recs); err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	rep, err := proofs.VerifyBundle(&buf, keys)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	return rep
}

func onlineReport(t *testing.T, f *fixture) domain.Report {
	t.Helper()
	rep, err := f.svc.Verify(t.Context(), 0, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestCheckpointsOfACleanHistory(t *testing.T) {
	f := newFixture(t)
	history(f)
	cp1 := f.checkpoint()
	if again, created, err := f.svc.Create(t.Context()); err != nil || created || again != cp1 {
		t.Errorf("a second checkpoint with no new event: created %v, %v; want the first again", created, err)
	}
	want, err := f.store.VerifyUntil(t.Context(), cp1.Sequence, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp1.Sequence != 8 || cp1.Head != want.Head || cp1.Engagements != 3 || cp1.KeyID != proofs.KeyID(pub(f)) {
		t.Errorf("checkpoint %+v; want sequence 8, verify's head %s, 3 engagements, key %s", cp1, want.Head, proofs.KeyID(pub(f)))
	}
	if err := cp1.Verify([]ed25519.PublicKey{pub(f)}); err != nil {
		t.Errorf("the checkpoint's signature: %v", err)
	}
	f.note(f.record(), "later")
	cp2 := f.checkpoint()

	for name, rep := range map[string]domain.Report{"online": onlineReport(t, f), "bundle": bundleReport(t, f, pub(f))} {
		if !rep.OK || rep.Checkpoints == nil || rep.Checkpoints.Checked != 2 || rep.Checkpoints.Valid != 2 ||
			rep.Checkpoints.LatestSequence != cp2.Sequence || rep.Checkpoints.LatestRoot != cp2.Root {
			t.Errorf("%s: %+v %+v; want ok with 2 valid checkpoints, the latest %d", name, rep, rep.Checkpoints, cp2.Sequence)
		}
		if rep.Events != 10 || rep.Engagements != 4 {
			t.Errorf("%s: %d events, %d engagements; want 10, 4", name, rep.Events, rep.Engagements)
		}
	}

	// Another key: nothing it did not sign verifies.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if rep := bundleReport(t, f, other); rep.OK || rep.Checkpoints.Valid != 0 || !strings.Contains(rep.Problems[0].Problem, "not one of the trusted keys") {
		t.Errorf("bundle with another key: %+v", rep)
	}

	// A restart with a rotated key keeps the old one listed and the
	// checkpoints it signed valid.
	_, rotated, _ := ed25519.GenerateKey(rand.Reader)
	svc, err := proofs.Open(t.Context(), f.store, f.ledger, proofs.Config{Key: rotated})
	if err != nil {
		t.Fatal(err)
	}
	keys := svc.Keys()
	if len(keys) != 2 || keys[0].KeyID != cp1.KeyID || keys[1].KeyID != svc.KeyID() {
		t.Fatalf("keys after rotation: %+v", keys)
	}
	f.note(f.record(), "after rotation")
	f.svc = svc
	cp3 := f.checkpoint()
	if cp3.KeyID == cp2.KeyID || len(svc.Checkpoints()) != 3 {
		t.Errorf("after rotation: checkpoint key %s, %d checkpoints", cp3.KeyID, len(svc.Checkpoints()))
	}
	if rep := onlineReport(t, f); !rep.OK || rep.Checkpoints.Valid != 3 || rep.Checkpoints.Keys != 2 {
		t.Errorf("online after rotation: %+v %+v", rep.Problems, rep.Checkpoints)
	}
	if rep := bundleReport(t, f, pub(f), rotated.Public().(ed25519.PublicKey)); !rep.OK || rep.Checkpoints.Valid != 3 {
		t.Errorf("bundle after rotation with both keys: %+v", rep.Problems)
	}
}

// appendSigned stores a checkpoint on the ledger as the service would.
func appendSigned(t *testing.T, f *fixture, cp proofs.Checkpoint) {
	t.Helper()
	data, err := jsonv2.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.AppendCheckpoint(t.Context(), data); err != nil {
		t.Fatal(err)
	}
}

// Each tampering is found online (verify of the running service) and
// offline (a bundle exported after it, checked with the public key).
func TestCheckpointTamperingIsDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *fixture, a string, cp1, cp2 proofs.Checkpoint)
		// problem is part of the problem reported.
		problem string
		// proofFails: a's proof against the second checkpoint, served
		// after the tampering, must fail its offline check too.
		proofFails bool
	}{
		{"a message altered in the store, the stream rewritten with every hash recomputed", func(t *testing.T, f *fixture, _ string, _, _ proofs.Checkpoint) {
			f.rewrite(func(seq uint64, payload []byte) []byte {
				if seq == 3 {
					return bytes.Replace(payload, []byte(`"one"`), []byte(`"uno"`), 1)
				}
				return payload
			})
		}, "its root is not that of the stream's first", true},
		{"a message published straight to the stream", func(t *testing.T, f *fixture, a string, _, _ proofs.Checkpoint) {
			f.publishRaw(&nats.Msg{Subject: "engagements.agreement." + a + ".noted", Data: []byte(`{"forged":true}`)})
		}, "undecodable event at sequence 10", false},
		{"a checkpoint with a bad signature", func(t *testing.T, f *fixture, _ string, _, cp2 proofs.Checkpoint) {
			sig, _ := base64.StdEncoding.DecodeString(cp2.Signature)
			sig[0] ^= 1
			cp2.Signature = base64.StdEncoding.EncodeToString(sig)
			appendSigned(t, f, cp2)
		}, "the signature does not match", false},
		{"a checkpoint altered after signing", func(t *testing.T, f *fixture, _ string, _, cp2 proofs.Checkpoint) {
			cp2.CreatedAt = "2020-01-01T00:00:00Z"
			appendSigned(t, f, cp2)
		}, "the signature does not match", false},
		{"a checkpoint that goes back to an earlier state", func(t *testing.T, f *fixture, _ string, cp1, _ proofs.Checkpoint) {
			cp1.CreatedAt = "2030-01-01T00:00:00Z"
			cp1.Sign(f.key) // genuinely signed, but after a later one
			appendSigned(t, f, cp1)
		}, "does not extend checkpoint 2", false},
		{"a checkpoint of another history (a fork), genuinely signed", func(t *testing.T, f *fixture, _ string, _, cp2 proofs.Checkpoint) {
			cp2.Sequence++
			cp2.Root = strings.Repeat("ab", 32)
			cp2.Sign(f.key)
			appendSigned(t, f, cp2)
			f.note(f.record(), "so that the stream is as long")
		}, "its root is not that of the stream's first 10 messages", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := history(f)
			cp1 := f.checkpoint()
			f.note(a, "four")
			cp2 := f.checkpoint()
			if rep := onlineReport(t, f); !rep.OK {
				t.Fatalf("before tampering: %+v", rep.Problems)
			}
			tt.tamper(t, f, a, cp1, cp2)
			for name, rep := range map[string]domain.Report{"online": onlineReport(t, f), "offline": bundleReport(t, f, pub(f))} {
				if rep.OK {
					t.Errorf("%s: ok after tampering", name)
					continue
				}
				found := false
				for _, p := range rep.Problems {
					found = found || strings.Contains(p.Problem, tt.problem)
				}
				if !found {
					t.Errorf("%s: problems %+v; want one saying %q", name, rep.Problems, tt.problem)
				}
			}
			if tt.proofFails {
				if res, err := proofs.VerifyProof(proofOf(t, f, a, cp2.Sequence), []ed25519.PublicKey{pub(f)}); err == nil {
					t.Errorf("a proof served after the tampering checks out: %+v", res)
				}
			}
		})
	}
}

func proofOf(t *testing.T, f *fixture, id string, at uint64) []byte {
	t.Helper()
	p, err := f.svc.Proof(t.Context(), id, at)
	if err != nil {
		t.Fatalf("Proof: %v", err)
	}
	b, err := json.Marshal(p) // as the API writes it
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestProofOfOneEngagement(t *testing.T) {
	f := newFixture(t)
	a := history(f)
	cp := f.checkpoint()
	f.note(a, "after the checkpoint")
	keys := []ed25519.PublicKey{pub(f)}

	file := proofOf(t, f, a, 0)
	res, err := proofs.VerifyProof(file, keys)
	if err != nil || !res.OK || res.Events != 4 || res.Sequence != cp.Sequence || res.EngagementID != a {
		t.Fatalf("VerifyProof: %+v, %v; want ok with 4 events up to %d", res, err, cp.Sequence)
	}
	if err := independentVerify(file, pub(f)); err != nil {
		t.Errorf("the independent check refuses a good proof: %v", err)
	}
	if res.Head != f.heads[a].hash && f.heads[a].seq <= cp.Sequence {
		t.Errorf("head %s", res.Head)
	}
	// Nothing of other engagements: every subject is a's.
	var p proofs.File
	if err := json.Unmarshal(file, &p); err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		if !strings.Contains(e.Subject, a) {
			t.Errorf("the proof holds %s", e.Subject)
		}
		payload, _ := base64.StdEncoding.DecodeString(e.Payload)
		stored, err := f.store.Message(t.Context(), e.Sequence)
		if err != nil || !bytes.Equal(stored.Payload, payload) || stored.Hash != e.Hash {
			t.Errorf("event %d is not as stored", e.Sequence)
		}
	}
	if _, err := f.svc.Proof(t.Context(), newID(), 0); err == nil {
		t.Error("a proof of an unknown engagement")
	}
	if _, err := f.svc.Proof(t.Context(), a, cp.Sequence+1); err == nil {
		t.Error("a proof against a checkpoint that does not exist")
	}

	// Tampered copies fail both checks.
	edit := func(fn func(p *proofs.File)) []byte {
		var q proofs.File
		if err := json.Unmarshal(file, &q); err != nil {
			t.Fatal(err)
		}
		fn(&q)
		b, _ := json.Marshal(q)
		return b
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		file []byte
		keys []ed25519.PublicKey
	}{
		{"events reordered", edit(func(p *proofs.File) { p.Events[1], p.Events[2] = p.Events[2], p.Events[1] }), keys},
		{"an event dropped in the middle", edit(func(p *proofs.File) { p.Events = append(p.Events[:1], p.Events[2:]...) }), keys},
		{"the last event dropped", edit(func(p *proofs.File) { p.Events = p.Events[:len(p.Events)-1] }), keys},
		{"the first event dropped", edit(func(p *proofs.File) { p.Events = p.Events[1:] }), keys},
		{"no events", edit(func(p *proofs.File) { p.Events = nil }), keys},
		{"a payload altered", edit(func(p *proofs.File) {
			b, _ := base64.StdEncoding.DecodeString(p.Events[2].Payload)
			p.Events[2].Payload = base64.StdEncoding.EncodeToString(bytes.Replace(b, []byte("two"), []byte("2wo"), 1))
		}), keys},
		{"a payload altered with its hashes recomputed", edit(func(p *proofs.File) {
			prev := p.Events[2].PrevHash
			for i := 2; i < len(p.Events); i++ {
				b, _ := base64.StdEncoding.DecodeString(p.Events[i].Payload)
				if i == 2 {
					b = bytes.Replace(b, []byte("two"), []byte("2wo"), 1)
					p.Events[i].Payload = base64.StdEncoding.EncodeToString(b)
				}
				p.Events[i].PrevHash = prev
				p.Events[i].Hash = eventstore.ChainHash(prev, p.Events[i].Subject, b)
				prev = p.Events[i].Hash
			}
		}), keys},
		{"the sequence of an event changed", edit(func(p *proofs.File) { p.Events[1].Sequence++ }), keys},
		{"another engagement's id", edit(func(p *proofs.File) { p.EngagementID = newID() }), keys},
		{"the checkpoint's root replaced", edit(func(p *proofs.File) { p.Checkpoint.Root = strings.Repeat("0", 64) }), keys},
		{"checked with another key", file, []ed25519.PublicKey{other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res, err := proofs.VerifyProof(tt.file, tt.keys); err == nil || res.OK {
				t.Errorf("VerifyProof accepts it: %+v", res)
			}
			if err := independentVerify(tt.file, tt.keys[0]); err == nil {
				t.Error("the independent check accepts it")
			}
		})
	}

	// Any byte changed anywhere in the file makes it fail.
	for i := range file {
		for _, bit := range []byte{0x01, 0x20} {
			flipped := bytes.Clone(file)
			flipped[i] ^= bit
			if res, err := proofs.VerifyProof(flipped, keys); err == nil || res.OK {
				t.Fatalf("byte %d (%q) xor %#x: VerifyProof accepts it", i, file[i], bit)
			}
			if bit == 0x01 && independentVerify(flipped, pub(f)) == nil {
				t.Fatalf("byte %d (%q) xor %#x: the independent check accepts it", i, file[i], bit)
			}
		}
	}

	// A proof against the earlier checkpoint after a new one.
	cp2 := f.checkpoint()
	if res, err := proofs.VerifyProof(proofOf(t, f, a, cp.Sequence), keys); err != nil || res.Events != 4 {
		t.Errorf("proof at the first checkpoint: %+v %v", res, err)
	}
	if res, err := proofs.VerifyProof(proofOf(t, f, a, 0), keys); err != nil || res.Events != 5 || res.Sequence != cp2.Sequence {
		t.Errorf("proof at the latest checkpoint: %+v %v", res, err)
	}
}

func TestRunSignsPeriodically(t *testing.T) {
	tests := []struct {
		name string
		cfg  proofs.Config
	}{
		{"every 3 events", proofs.Config{EveryEvents: 3}},
		{"every few milliseconds when there are new events", proofs.Config{Every: time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.cfg.Key = f.key
			svc, err := proofs.Open(t.Context(), f.store, f.ledger, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			runService(t, svc)
			a := f.record()
			f.note(a, "one")
			f.note(a, "two")
			// Run looks once a second: poll for at most 10 s.
			latest := func() (proofs.Checkpoint, bool) {
				cps := svc.Checkpoints()
				if len(cps) == 0 {
					return proofs.Checkpoint{}, false
				}
				return cps[len(cps)-1], true
			}
			for i := 0; i < 100; i++ {
				if cp, ok := latest(); ok && cp.Sequence == 3 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			cp, ok := latest()
			if !ok || cp.Sequence != 3 {
				t.Fatalf("checkpoints %+v; want the latest at sequence 3", svc.Checkpoints())
			}
			if err := cp.Verify([]ed25519.PublicKey{pub(f)}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestBundleLinesAreAsDocumented holds each line of a bundle to the
// members README.md gives it.
func TestBundleLinesAreAsDocumented(t *testing.T) {
	f := newFixture(t)
	history(f)
	f.checkpoint()
	recs, err := f.ledger.Records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := proofs.WriteBundle(t.Context(), &buf, f.store, recs); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"bundle":     {"format", "last_sequence", "type"},
		"key":        {"key", "type"},
		"checkpoint": {"checkpoint", "type"},
		"event":      {"event", "type"},
	}
	inner := map[string][]string{
		"key":        {"algorithm", "created_at", "key_id", "public_key"},
		"checkpoint": {"created_at", "engagements", "head", "heads_root", "key_id", "root", "sequence", "signature"},
		"event":      {"hash", "payload", "prev_hash", "sequence", "subject"},
	}
	order := ""
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var l map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		var typ string
		_ = json.Unmarshal(l["type"], &typ)
		if got := slices.Sorted(maps.Keys(l)); !slices.Equal(got, want[typ]) {
			t.Errorf("line %d (%s): members %v, want %v", i+1, typ, got, want[typ])
		}
		if members, ok := inner[typ]; ok {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(l[typ], &m)
			if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, members) {
				t.Errorf("line %d (%s): %s members %v, want %v", i+1, typ, typ, got, members)
			}
		}
		if !strings.HasSuffix(order, typ[:1]) {
			order += typ[:1]
		}
	}
	if order != "bkce" {
		t.Errorf("sections in the order %q, want bundle, keys, checkpoints, events (bkce)", order)
	}
}
