package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/proofs"
	"github.com/labstack/echo/v4"
)

// Proofs is what the API needs of signed checkpoints; proofs.Service is
// one.
type Proofs interface {
	Create(ctx context.Context) (cp proofs.Checkpoint, created bool, err error)
	Checkpoints() []proofs.Checkpoint
	Keys() []proofs.Key
	KeyID() string
	Proof(ctx context.Context, id string, at uint64) (*proofs.File, error)
	Verify(ctx context.Context, until uint64, progress func(done, total uint64)) (domain.Report, error)
}

// WithProofs serves signed checkpoints, keys and proofs, and makes
// /v1/verify check the checkpoints too.
func WithProofs(p Proofs) Option { return func(s *Server) { s.proofs = p } }

// keyResponse is one key of GET /v1/keys.
type keyResponse struct {
	proofs.Key
	// Current is set for the key new checkpoints are signed with.
	Current bool `json:"current"`
	// PEM is the key as a PEM "PUBLIC KEY" block (PKIX), as openssl reads it.
	PEM string `json:"pem"`
}

// keys is GET /v1/keys: every key that signs or signed checkpoints.
func (s *Server) keys(c echo.Context) error {
	keys := s.proofs.Keys()
	out := make([]keyResponse, 0, len(keys))
	for _, k := range keys {
		r := keyResponse{Key: k, Current: k.KeyID == s.proofs.KeyID()}
		if pub, err := k.Public(); err == nil {
			r.PEM = proofs.PublicPEM(pub)
		}
		out = append(out, r)
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

// checkpointItem is one checkpoint of GET /v1/checkpoints: Number is its
// 1-based position in the list (not signed).
type checkpointItem struct {
	Number int `json:"number"`
	proofs.Checkpoint
}

type checkpointsResponse struct {
	Items []checkpointItem `json:"items"`
	// NextAfter is the last item's number: pass it as after for the next
	// page.
	NextAfter int `json:"next_after"`
}

// listCheckpoints is GET /v1/checkpoints?after=&limit=, oldest first.
func (s *Server) listCheckpoints(c echo.Context) error {
	after, limit := 0, DefaultLimit
	var bad []domain.FieldError
	if a := c.QueryParam("after"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			bad = append(bad, domain.FieldError{Field: "after", Message: "must be a checkpoint number (a whole number)"})
		}
		after = n
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			bad = append(bad, domain.FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)})
		}
		limit = n
	}
	if len(bad) > 0 {
		return badRequest("a query parameter is not valid", bad...)
	}
	all := s.proofs.Checkpoints()
	resp := checkpointsResponse{Items: []checkpointItem{}, NextAfter: after}
	for i := after; i < len(all) && len(resp.Items) < limit; i++ {
		resp.Items = append(resp.Items, checkpointItem{Number: i + 1, Checkpoint: all[i]})
		resp.NextAfter = i + 1
	}
	return c.JSON(http.StatusOK, resp)
}

// createCheckpoint is POST /v1/checkpoints: 201 with a new checkpoint once
// stored, or 200 with the latest when it already covers every event.
func (s *Server) createCheckpoint(c echo.Context) error {
	cp, created, err := s.proofs.Create(c.Request().Context())
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, checkpointItem{Number: len(s.proofs.Checkpoints()), Checkpoint: cp})
}

// proof is GET /v1/engagements/{id}/proof[?checkpoint=SEQ].
func (s *Server) proof(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var at uint64
	if v := c.QueryParam("checkpoint"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return badRequest("checkpoint must be a checkpoint's sequence",
				domain.FieldError{Field: "checkpoint", Message: "must be a whole number from 1"})
		}
		at = n
	}
	f, err := s.proofs.Proof(c.Request().Context(), id, at)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="proof-`+id+`.json"`)
	return c.JSON(http.StatusOK, f)
}
