package eventstore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// PersonKeyBucket is the KV bucket of the data subjects' keys: one entry
// per person ("person.<id>"), and the secret that turns a name or e-mail
// into a person id ("lookup").
const PersonKeyBucket = "ENGAGEMENTS_PERSON_KEYS"

// sealedPrefix starts every sealed value: "sealed:v1:<person id>:<key
// version>:<base64url(nonce ‖ AES-256-GCM ciphertext)>".
const sealedPrefix = "sealed:v1:"

const lookupKey = "lookup"

// Keyring seals personal fields with a key per data subject and opens them
// again; once a subject's key is erased its fields read domain.Erased. It
// is the one place that holds the keys: every reader of the store opens
// events through it. Its zero value is not usable; the store opens one.
type Keyring struct {
	kv jetstream.KeyValue
	mu sync.Mutex
	// secret is the lookup secret, loaded on first use.
	secret []byte
	// people caches the records read or written, by person id.
	people map[string]personRecord
}

// personRecord is one data subject's entry: the current key, or once
// erased none, with who erased it when.
type personRecord struct {
	Version   int       `json:"version"`
	Key       []byte    `json:"key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ErasedAt  time.Time `json:"erased_at,omitzero"`
	ErasedBy  string    `json:"erased_by,omitempty"`
	revision  uint64
}

func personKey(id string) string { return "person." + id }

// openKeyring opens (creating unless read-only) the key bucket. A read-only
// store without one gets a keyring with no keys: every sealed field reads
// erased.
func (s *Store) openKeyring(ctx context.Context) error {
	var err error
	var kv jetstream.KeyValue
	if s.cfg.ReadOnly {
		kv, err = s.js.KeyValue(ctx, PersonKeyBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = nil, nil
		}
	} else {
		kv, err = Provision(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
			return s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:      PersonKeyBucket,
				Description: "Keys of the data subjects whose personal fields the events hold sealed; erasing one erases them",
				History:     1, Storage: jetstream.FileStorage, Replicas: s.cfg.Replicas,
			})
		})
	}
	if err != nil {
		return fmt.Errorf("open key bucket %s: %w", PersonKeyBucket, Unavailable(err))
	}
	s.keys = &Keyring{kv: kv, people: make(map[string]personRecord)}
	return nil
}

// Keyring is the store's keyring.
func (s *Store) Keyring() *Keyring { return s.keys }

// errNoBucket answers a write to a read-only store's missing bucket.
var errNoBucket = errors.New("eventstore: no key bucket (read-only store)")

// lookupSecret returns the secret person ids are keyed with, creating it
// on first use (the first writer wins; the others read its secret).
func (k *Keyring) lookupSecret(ctx context.Context) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.secret != nil {
		return k.secret, nil
	}
	if k.kv == nil {
		return nil, errNoBucket
	}
	for range 3 {
		e, err := k.kv.Get(ctx, lookupKey)
		if err == nil {
			k.secret = bytes.Clone(e.Value())
			return k.secret, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("lookup secret: %w", Unavailable(err))
		}
		secret := make([]byte, 32)
		rand.Read(secret)
		if _, err := k.kv.Create(ctx, lookupKey, secret); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("create lookup secret: %w", Unavailable(err))
		}
	}
	return nil, errors.New("lookup secret: created and not found")
}

// NormalisePerson is how a name or e-mail is compared when it names a
// data subject: case and runs of white space do not count.
func NormalisePerson(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// PersonID is the id of the data subject identified by s (an e-mail, or a
// name when there is none): a keyed hash of NormalisePerson(s), so the same
// person gets the same id and the id tells nothing without the secret.
func (k *Keyring) PersonID(ctx context.Context, s string) (string, error) {
	secret, err := k.lookupSecret(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(NormalisePerson(s)))
	return "p" + hex.EncodeToString(m.Sum(nil)[:16]), nil
}

// record returns the subject's record, from the cache unless it is older
// than minVersion; found is false when the bucket has none.
func (k *Keyring) record(ctx context.Context, id string, minVersion int) (personRecord, bool, error) {
	k.mu.Lock()
	r, ok := k.people[id]
	k.mu.Unlock()
	if ok && r.Version >= minVersion {
		return r, true, nil
	}
	if k.kv == nil {
		return personRecord{}, false, nil
	}
	e, err := k.kv.Get(ctx, personKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return personRecord{}, false, nil
	}
	if err != nil {
		return personRecord{}, false, fmt.Errorf("person %s: %w", id, Unavailable(err))
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return personRecord{}, false, fmt.Errorf("person %s: %w", id, err)
	}
	r.revision = e.Revision()
	k.remember(id, r)
	return r, true, nil
}

// remember caches r unless the cache holds a later state of the subject.
func (k *Keyring) remember(id string, r personRecord) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.people[id]; ok && (old.Version > r.Version || old.Version == r.Version && !old.ErasedAt.IsZero()) {
		return
	}
	k.people[id] = r
}

// currentKey returns the subject's live key, making one on first mention,
// or a new version after an erasure.
func (k *Keyring) currentKey(ctx context.Context, id string) (personRecord, error) {
	if k.kv == nil {
		return personRecord{}, errNoBucket
	}
	for range 5 {
		r, found, err := k.record(ctx, id, 0)
		if err != nil {
			return r, err
		}
		if found && r.Key != nil {
			return r, nil
		}
		next := personRecord{Version: r.Version + 1, Key: make([]byte, 32), CreatedAt: time.Now().UTC()}
		rand.Read(next.Key)
		b, _ := marshal(next)
		if !found {
			next.revision, err = k.kv.Create(ctx, personKey(id), b)
		} else {
			next.revision, err = k.kv.Update(ctx, personKey(id), b, r.revision)
		}
		if err == nil {
			k.remember(id, next)
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return personRecord{}, fmt.Errorf("person %s: %w", id, Unavailable(err))
		}
		k.forget(id) // another instance wrote first: read its record
	}
	return personRecord{}, fmt.Errorf("person %s: %w: the key kept changing", id, domain.ErrUnavailable)
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

func (k *Keyring) forget(id string) {
	k.mu.Lock()
	delete(k.people, id)
	k.mu.Unlock()
}

// marshal is json.Marshal without HTML escapes: the data keeps its text
// as entered.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// aad binds a sealed value to its event, field and key.
func aad(eventID, field, id string, version int) []byte {
	return []byte("engagements personal v1\x00" + eventID + "\x00" + field + "\x00" + id + "\x00" + strconv.Itoa(version))
}

// seal encrypts plain for subject id as field of event eventID.
func (k *Keyring) seal(ctx context.Context, id, eventID, field, plain string) (string, error) {
	r, err := k.currentKey(ctx, id)
	if err != nil {
		return "", err
	}
	gcm, err := newGCM(r.Key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	ct := gcm.Seal(nonce, nonce, []byte(plain), aad(eventID, field, id, r.Version))
	return sealedPrefix + id + ":" + strconv.Itoa(r.Version) + ":" + base64.RawURLEncoding.EncodeToString(ct), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("person key: %w", err)
	}
	return cipher.NewGCM(block)
}

// parseSealed splits a sealed value; ok is false for anything else.
func parseSealed(s string) (id string, version int, ct []byte, ok bool) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return "", 0, nil, false
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 || !domain.CheckPersonID(parts[0]) {
		return "", 0, nil, false
	}
	v, err := strconv.Atoi(parts[1])
	if err != nil || v < 1 {
		return "", 0, nil, false
	}
	ct, err = base64.RawURLEncoding.DecodeString(parts[2])
	return parts[0], v, ct, err == nil
}

// open decrypts a sealed value of field of event eventID: the plain text,
// or domain.Erased with erased set when the subject's key is gone (or the
// value is not one the key sealed). id is the subject ("" if s is not a
// sealed value at all: then s is returned as it is).
func (k *Keyring) open(ctx context.Context, eventID, field, s string) (plain, id string, erased bool, err error) {
	id, version, ct, ok := parseSealed(s)
	if !ok {
		return s, "", false, nil
	}
	r, found, err := k.record(ctx, id, version)
	if err != nil {
		return "", id, false, err
	}
	if !found || r.Key == nil || r.Version != version {
		return domain.Erased, id, true, nil
	}
	gcm, err := newGCM(r.Key)
	if err != nil || len(ct) < gcm.NonceSize() {
		return domain.Erased, id, true, nil
	}
	p, err := gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], aad(eventID, field, id, version))
	if err != nil {
		return domain.Erased, id, true, nil
	}
	return string(p), id, false, nil
}

// Person returns what the keyring knows of subject id; domain.ErrNotFound
// when it has never sealed anything for it.
func (k *Keyring) Person(ctx context.Context, id string) (domain.Person, error) {
	if !domain.CheckPersonID(id) {
		return domain.Person{}, fmt.Errorf("person %s: %w", id, domain.ErrNotFound)
	}
	r, found, err := k.record(ctx, id, 0)
	if k.kv != nil && err == nil && found {
		r, found, err = k.fresh(ctx, id) // another instance may have erased it
	}
	if err != nil {
		return domain.Person{}, err
	}
	if !found {
		return domain.Person{}, fmt.Errorf("person %s: %w", id, domain.ErrNotFound)
	}
	return domain.Person{ID: id, KeyVersion: r.Version, Erased: r.Key == nil, ErasedAt: r.ErasedAt, ErasedBy: r.ErasedBy}, nil
}

// fresh reads the subject's record from the bucket, not the cache.
func (k *Keyring) fresh(ctx context.Context, id string) (personRecord, bool, error) {
	k.forget(id)
	return k.record(ctx, id, 0)
}

// Erase destroys subject id's key: the KV entry holding it is purged (no
// revision keeps it) and replaced by a record without key naming who
// erased it and when. domain.ErrNotFound for an unknown subject,
// domain.ErrConflict when its key is already erased.
func (k *Keyring) Erase(ctx context.Context, id, actor string, at time.Time) (domain.Person, error) {
	if k.kv == nil {
		return domain.Person{}, errNoBucket
	}
	r, found, err := k.fresh(ctx, id)
	if err != nil {
		return domain.Person{}, err
	}
	if !found || !domain.CheckPersonID(id) {
		return domain.Person{}, fmt.Errorf("person %s: %w", id, domain.ErrNotFound)
	}
	if r.Key == nil {
		return domain.Person{}, fmt.Errorf("person %s: already erased: %w", id, domain.ErrConflict)
	}
	if err := k.kv.Purge(ctx, personKey(id), jetstream.LastRevision(r.revision)); err != nil {
		if isWrongSequence(err) {
			return domain.Person{}, fmt.Errorf("person %s: changed meanwhile, try again: %w", id, domain.ErrConflict)
		}
		return domain.Person{}, fmt.Errorf("purge person %s: %w", id, Unavailable(err))
	}
	tomb := personRecord{Version: r.Version, CreatedAt: r.CreatedAt, ErasedAt: at.UTC(), ErasedBy: actor}
	b, _ := marshal(tomb)
	// Create: a mention made since the purge has started a new key, which
	// is kept (its record says nothing of this erasure).
	if rev, err := k.kv.Create(ctx, personKey(id), b); err == nil {
		tomb.revision = rev
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return domain.Person{}, fmt.Errorf("record erasure of person %s: %w", id, Unavailable(err))
	}
	k.markErased(id, r.Version, tomb)
	return domain.Person{ID: id, KeyVersion: r.Version, Erased: true, ErasedAt: tomb.ErasedAt, ErasedBy: actor}, nil
}

// markErased makes the cache forget key version (and those before it) of
// subject id; it runs when an erasure event is read, so that every
// instance stops opening the subject's fields at the event, whatever its
// cache held.
func (k *Keyring) markErased(id string, version int, tomb personRecord) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.people[id]; ok && old.Version > version {
		return
	}
	tomb.Key, tomb.Version = nil, version
	k.people[id] = tomb
}

// SealEvent seals ev's personal fields (the spec's Field.Personal; for a
// correction, those of the corrected type, correctedType, under "fields").
// subjects, when it names a field's person id (that of the event a
// release or correction refers to), seals the field for that subject;
// otherwise a focal point is identified by its e-mail when it has one, else
// by its name, and any other field by its own value. ev.Data must be what
// the domain decided (plain text, valid).
func (k *Keyring) SealEvent(ctx context.Context, ev *domain.Event, correctedType domain.EventType, subjects map[string]string) error {
	t, prefix := ev.Type, ""
	if t == domain.EngagementCorrected {
		t, prefix = correctedType, "fields"
	}
	personal := domain.PersonalFields(t)
	if len(personal) == 0 && !mayLookAlike(ev.Data) {
		return nil // nothing to seal, and no value refuseLookalikes would refuse
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data, &top); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	obj := top
	if prefix != "" {
		obj = nil
		if raw, ok := top[prefix]; ok {
			if err := json.Unmarshal(raw, &obj); err != nil {
				return fmt.Errorf("seal: %w", err)
			}
		}
	}
	if err := refuseLookalikes(top, obj); err != nil {
		return err
	}
	if len(personal) == 0 || len(obj) == 0 {
		return nil
	}
	values := make(map[string]string)
	for _, name := range personal {
		if raw, ok := obj[name]; ok {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("seal %s: %w", name, err)
			}
			values[name] = s
		}
	}
	if len(values) == 0 {
		return nil
	}
	subject := func(name string) string { return values[name] }
	if t == domain.EngagementFocalPointAssigned || t == domain.EngagementFocalPointReleased {
		who := values["email"]
		if who == "" {
			who = values["name"]
		}
		subject = func(string) string { return who }
	}
	// A focal point is one subject: any id known for it is its id.
	known := ""
	for _, id := range subjects {
		if domain.CheckPersonID(id) {
			known = id
		}
	}
	for name, plain := range values {
		if plain == "" {
			continue
		}
		id := subjects[name]
		if !domain.CheckPersonID(id) && known != "" && (t == domain.EngagementFocalPointAssigned || t == domain.EngagementFocalPointReleased) {
			id = known
		}
		if !domain.CheckPersonID(id) {
			var err error
			if id, err = k.PersonID(ctx, subject(name)); err != nil {
				return err
			}
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		sealed, err := k.seal(ctx, id, ev.ID, path, plain)
		if err != nil {
			return err
		}
		obj[name], _ = marshal(sealed)
	}
	if prefix != "" {
		top[prefix], _ = marshal(obj)
	}
	data, err := marshal(top)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	ev.Data = data
	return nil
}

// refuseLookalikes refuses plain values that would read as sealed or as
// erased: neither may be entered by a client.
func refuseLookalikes(objs ...map[string]json.RawMessage) error {
	for _, o := range objs {
		for name, raw := range o {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				continue
			}
			if strings.HasPrefix(s, sealedPrefix) || s == domain.Erased {
				return &domain.ValidationError{Fields: []domain.FieldError{{Field: "data." + name,
					Message: fmt.Sprintf("may not be %q or start with %q", domain.Erased, sealedPrefix)}}}
			}
		}
	}
	return nil
}

// mayLookAlike says whether data could hold a value refuseLookalikes
// refuses: only if its bytes hold the sealed prefix or domain.Erased, or a
// backslash (an escape could spell either), so that most appends, with no
// personal field, are not parsed again for it.
func mayLookAlike(data []byte) bool {
	return bytes.Contains(data, []byte(sealedPrefix)) || bytes.Contains(data, []byte(domain.Erased)) ||
		bytes.IndexByte(data, '\\') >= 0
}

// OpenEvent opens ev's sealed fields in place and lists them in
// ev.Personal. Reading an erasure event marks its subject erased here.
func (k *Keyring) OpenEvent(ctx context.Context, ev *domain.Event) error {
	if ev.Type == domain.EngagementPersonalDataErased {
		var d domain.PersonalDataErasedData
		if json.Unmarshal(ev.Data, &d) == nil && domain.CheckPersonID(d.PersonID) {
			// Key versions up to the one erased read erased from here on; a
			// later key (a mention since) is not touched.
			k.markErased(d.PersonID, d.KeyVersion, personRecord{ErasedAt: ev.RecordedAt, ErasedBy: ev.Actor})
		}
		return nil
	}
	if !bytes.Contains(ev.Data, []byte(sealedPrefix)) {
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data, &top); err != nil {
		return nil // left to the fold to refuse
	}
	var fields []domain.PersonalField
	openIn := func(obj map[string]json.RawMessage, prefix string) error {
		for name, raw := range obj {
			var s string
			if json.Unmarshal(raw, &s) != nil || !strings.HasPrefix(s, sealedPrefix) {
				continue
			}
			path := prefix + name
			plain, id, erased, err := k.open(ctx, ev.ID, path, s)
			if err != nil {
				return err
			}
			obj[name], _ = marshal(plain)
			fields = append(fields, domain.PersonalField{Field: path, PersonID: id, Erased: erased})
		}
		return nil
	}
	if err := openIn(top, ""); err != nil {
		return err
	}
	if raw, ok := top["fields"]; ok && ev.Type == domain.EngagementCorrected {
		var nested map[string]json.RawMessage
		if json.Unmarshal(raw, &nested) == nil {
			if err := openIn(nested, "fields."); err != nil {
				return err
			}
			top["fields"], _ = marshal(nested)
		}
	}
	data, err := marshal(top)
	if err != nil {
		return err
	}
	ev.Data = data
	slices.SortFunc(fields, func(a, b domain.PersonalField) int { return strings.Compare(a.Field, b.Field) })
	ev.Personal = fields
	return nil
}

// openedCloudEvent is a stored CloudEvent with its personal fields opened,
// as SSE and webhooks deliver it; the extension erased lists the data
// fields that read domain.Erased (space-separated), absent when none does.
type openedCloudEvent struct {
	CloudEvent
	Erased string `json:"erased,omitempty"`
}

// openMessage opens m's event through the keyring and, when it has
// personal fields, sets m.Opened to the CloudEvent readers deliver. An
// error (the key bucket not answering) is the read's: nothing is yielded
// with fields left sealed.
func (k *Keyring) openMessage(ctx context.Context, m *domain.Message) error {
	if k == nil || m.Err != nil {
		return nil
	}
	if err := k.OpenEvent(ctx, &m.Event); err != nil {
		return fmt.Errorf("open personal fields at sequence %d: %w", m.Sequence, err)
	}
	if len(m.Event.Personal) == 0 {
		return nil
	}
	var ce openedCloudEvent
	if err := json.Unmarshal(m.Payload, &ce.CloudEvent); err != nil {
		return fmt.Errorf("open personal fields at sequence %d: %w", m.Sequence, err)
	}
	ce.Data = m.Event.Data
	var erased []string
	for _, f := range m.Event.Personal {
		if f.Erased {
			erased = append(erased, f.Field)
		}
	}
	ce.Erased = strings.Join(erased, " ")
	b, err := marshal(ce)
	if err != nil {
		return fmt.Errorf("open personal fields at sequence %d: %w", m.Sequence, err)
	}
	m.Opened = b
	return nil
}
