package webui

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/iom-who/engagements/domain"
)

// Checkpoint is one signed checkpoint as the checkpoint page shows it.
type Checkpoint struct {
	Number    int
	Sequence  uint64
	Root      string
	KeyID     string
	CreatedAt string
	// Problem says why its signature does not check out with the listed
	// keys; "" when it does.
	Problem string
}

// SigningKey is one key the service signs or signed checkpoints with.
type SigningKey struct {
	KeyID, CreatedAt, PEM string
	Current               bool
}

// Checkpoints is what the checkpoint page and the proof and bundle
// downloads need; app/stack wires the proofs service.
type Checkpoints interface {
	// List reads every stored checkpoint, oldest first, each signature
	// checked with the listed keys.
	List(ctx context.Context) ([]Checkpoint, error)
	Keys() []SigningKey
	// Create signs a checkpoint of everything stored; created is false
	// when the latest one already covers it.
	Create(ctx context.Context) (cp Checkpoint, created bool, err error)
	// Proof is the engagement's proof file against the latest checkpoint
	// (wrapping domain.ErrNotFound when there is none for it).
	Proof(ctx context.Context, id string) ([]byte, error)
	// Bundle writes the whole history with its checkpoints and keys.
	Bundle(ctx context.Context, w io.Writer) error
}

// WithCheckpoints turns on /checkpoints (the list with each signature's
// status, and "sign one now"), /export.bundle and each engagement's
// "download proof", for auditors.
func WithCheckpoints(c Checkpoints) Option { return func(cfg *config) { cfg.checkpoints = c } }

type checkpointsData struct {
	base
	Items []Checkpoint
	Keys  []SigningKey
	// Invalid counts the checkpoints whose signature fails.
	Invalid int
}

// checkpointsPage is GET /checkpoints: newest first.
func (u *UI) checkpointsPage(w http.ResponseWriter, r *http.Request, s *session) {
	all, err := u.checkpoints.List(r.Context())
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	d := checkpointsData{base: u.base(s, "Checkpoints", "checkpoints"), Keys: u.checkpoints.Keys()}
	for i := len(all) - 1; i >= 0; i-- {
		d.Items = append(d.Items, all[i])
		if all[i].Problem != "" {
			d.Invalid++
		}
	}
	u.render(w, http.StatusOK, "checkpoints", d)
}

// createCheckpoint is POST /checkpoints.
func (u *UI) createCheckpoint(w http.ResponseWriter, r *http.Request, s *session) {
	cp, created, err := u.checkpoints.Create(r.Context())
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	msg := "Signed checkpoint " + strconv.Itoa(cp.Number) + " at sequence " + strconv.FormatUint(cp.Sequence, 10) + "."
	if !created {
		msg = "Nothing new since checkpoint " + strconv.Itoa(cp.Number) + ": it already covers every event."
	}
	u.setFlash(s, msg)
	seeOther(w, r, "/checkpoints")
}

// downloadProof is GET /engagements/{id}/proof.json.
func (u *UI) downloadProof(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := domain.CheckID(id); err != nil {
		u.failed(w, r, s, err)
		return
	}
	b, err := u.checkpoints.Proof(r.Context(), id)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			u.errorPage(w, r, s, http.StatusNotFound, "No proof yet",
				"There is no signed checkpoint that covers this engagement yet. Sign one on the Checkpoints page, then download the proof.")
			return
		}
		u.failed(w, r, s, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="proof-`+id+`.json"`)
	_, _ = w.Write(b)
}

// downloadBundle is GET /export.bundle.
func (u *UI) downloadBundle(w http.ResponseWriter, r *http.Request, _ *session) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="engagements-bundle.ndjson"`)
	if err := u.checkpoints.Bundle(r.Context(), w); err != nil {
		// The status is sent: a cut file is all the browser can be told
		// (and verify --bundle refuses it).
		u.log.Warn("bundle from the web pages failed", "err", err)
	}
}
