package proofs

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// BundleFormat names the bundle's format and version.
const BundleFormat = "engagements-bundle/1"

// maxBundleLine bounds one line of a bundle: an event of the stream's
// largest (1 MiB) in base64, with room to spare.
const maxBundleLine = 4 << 20

// bundleLine is one line of a bundle: a JSON object whose type says which
// of the other members it has.
type bundleLine struct {
	// Type is "bundle" (the first line, with Format and LastSequence),
	// "key", "checkpoint" or "event".
	Type         string      `json:"type"`
	Format       string      `json:"format,omitempty"`
	LastSequence uint64      `json:"last_sequence,omitzero"`
	Key          *Key        `json:"key,omitempty"`
	Checkpoint   *Checkpoint `json:"checkpoint,omitempty"`
	Event        *Event      `json:"event,omitempty"`
}

// WriteBundle writes the whole history as a bundle: the header line, the
// keys and checkpoints of recs, then every stored message up to the
// stream's last sequence (read after the ledger, so it covers every
// checkpoint), one line each.
func WriteBundle(ctx context.Context, w io.Writer, st Stream, recs []Record) (events int, err error) {
	cps, keys, _ := parseRecords(recs)
	last, err := st.LastSequence(ctx)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	line := func(l bundleLine) error {
		b, err := jsonv2.Marshal(l)
		if err != nil {
			return err
		}
		_, err = bw.Write(append(b, '\n'))
		return err
	}
	if err := line(bundleLine{Type: "bundle", Format: BundleFormat, LastSequence: last}); err != nil {
		return 0, err
	}
	for i := range keys {
		if err := line(bundleLine{Type: "key", Key: &keys[i]}); err != nil {
			return 0, err
		}
	}
	for i := range cps {
		if err := line(bundleLine{Type: "checkpoint", Checkpoint: &cps[i]}); err != nil {
			return 0, err
		}
	}
	if last > 0 {
		for m, err := range st.Read(ctx, 0, domain.Filter{}) {
			if err != nil {
				return events, err
			}
			if m.Sequence > last {
				break
			}
			e := eventOf(m, nil)
			if err := line(bundleLine{Type: "event", Event: &e}); err != nil {
				return events, err
			}
			events++
		}
	}
	return events, bw.Flush()
}

// ErrBundle marks a bundle that is not in the documented form.
var ErrBundle = errors.New("not a bundle in the documented form")

// VerifyBundle checks a bundle with nothing but the trusted public keys, as
// Verify and the online checkpoint checks do: every message's hash and
// chain, no gap, and each checkpoint's signature by one of keys, its root,
// head and heads root against the bundle's messages and its consistency
// with the checkpoint before it. The keys the bundle lists are not
// trusted for being there.
func VerifyBundle(r io.Reader, keys []ed25519.PublicKey) (domain.Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxBundleLine)
	n := 0
	next := func() (bundleLine, bool, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return bundleLine{}, false, fmt.Errorf("%w: line %d: %w", ErrBundle, n+1, err)
			}
			return bundleLine{}, false, nil
		}
		n++
		var l bundleLine
		if err := strictUnmarshal(sc.Bytes(), &l); err != nil {
			return l, false, fmt.Errorf("%w: line %d: %w", ErrBundle, n, err)
		}
		return l, true, nil
	}
	head, ok, err := next()
	if err != nil {
		return domain.Report{}, err
	}
	if !ok || head.Type != "bundle" || head.Format != BundleFormat {
		return domain.Report{}, fmt.Errorf("%w: the first line is not {\"type\":\"bundle\",\"format\":%q,...}", ErrBundle, BundleFormat)
	}
	var cps []Checkpoint
	var pending *bundleLine
	for {
		l, ok, err := next()
		if err != nil {
			return domain.Report{}, err
		}
		if !ok {
			break
		}
		switch {
		case l.Type == "key" && l.Key != nil:
		case l.Type == "checkpoint" && l.Checkpoint != nil:
			cps = append(cps, *l.Checkpoint)
			continue
		case l.Type == "event" && l.Event != nil:
			pending = &l
		default:
			return domain.Report{}, fmt.Errorf("%w: line %d is not a key, checkpoint or event", ErrBundle, n)
		}
		if pending != nil {
			break
		}
	}
	c := newChecker(cps, keys)
	c.beyond = true
	msgs := func(yield func(domain.Message, error) bool) {
		for l := pending; l != nil; {
			e := l.Event
			payload, err := base64.StdEncoding.Strict().DecodeString(e.Payload)
			if err != nil {
				yield(domain.Message{}, fmt.Errorf("%w: line %d: payload: %w", ErrBundle, n, err))
				return
			}
			if !yield(eventstore.DecodeStored(e.Sequence, e.Subject, e.Hash, e.PrevHash, payload), nil) {
				return
			}
			nl, ok, err := next()
			if err != nil || ok && (nl.Type != "event" || nl.Event == nil) {
				if err == nil {
					err = fmt.Errorf("%w: line %d: only events may follow the first event", ErrBundle, n)
				}
				yield(domain.Message{}, err)
				return
			}
			if !ok {
				return
			}
			l = &nl
		}
	}
	rep, err := eventstore.VerifyMessages(msgs, head.LastSequence, nil, c)
	if err != nil {
		return rep, err
	}
	rep.Checkpoints = c.report(&rep)
	return rep, nil
}
