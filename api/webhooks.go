package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/webhooks"
	"github.com/labstack/echo/v4"
)

// Subscriptions is what the webhook routes need from the webhook manager.
type Subscriptions interface {
	Create(ctx context.Context, owner string, req webhooks.Request) (webhooks.Subscription, error)
	// List returns owner's subscriptions, or every one when owner is "".
	List(owner string) []webhooks.Subscription
	Get(id string) (webhooks.Subscription, error)
	Delete(ctx context.Context, id string) error
	Failures(ctx context.Context, id string) ([]webhooks.Failure, error)
	// Health is a subscription's delivery progress and pending count.
	Health(ctx context.Context, id string) (webhooks.Health, error)
	Pause(ctx context.Context, id string) (webhooks.Subscription, error)
	Resume(ctx context.Context, id string) (webhooks.Subscription, error)
	// Redeliver sends a recorded failure again, once, and says how it went.
	Redeliver(ctx context.Context, id string, seq uint64) (webhooks.Redelivery, error)
}

// WithSubscriptions turns on the /v1/subscriptions routes (webhooks).
func WithSubscriptions(x Subscriptions) Option { return func(s *Server) { s.subs = x } }

// subscriber is who asks: the token's name, and whether it may see every
// subscription (admins; anyone when the API runs without tokens).
func subscriber(c echo.Context) (owner string, all bool) {
	info, ok := c.Get(tokenKey).(domain.TokenInfo)
	if !ok {
		if owner = c.Request().Header.Get("X-Actor"); owner == "" {
			owner = "anonymous"
		}
		return owner, true
	}
	return info.Name, info.Role == domain.RoleAdmin
}

// createSubscription: POST /v1/subscriptions (subscriber, admin).
func (s *Server) createSubscription(c echo.Context) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	m, err := fields(body, "url", "types", "secret", "from_sequence", "from_time")
	if err != nil {
		return err
	}
	var req webhooks.Request
	var missing []domain.FieldError
	for _, f := range []struct {
		name string
		dst  *string
	}{{"url", &req.URL}, {"secret", &req.Secret}} {
		v, ok, err := stringField(m, f.name)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, domain.FieldError{Field: f.name, Message: "is required"})
		}
		*f.dst = v
	}
	if raw, ok := m["types"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		if err := json.Unmarshal(raw, &req.Types); err != nil {
			return badRequest("a field has the wrong type", domain.FieldError{Field: "types", Message: "must be a list of strings"})
		}
	} else {
		missing = append(missing, domain.FieldError{Field: "types", Message: "is required"})
	}
	if raw, ok := m["from_sequence"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		n, err := sequenceField(raw)
		if err != nil {
			return err
		}
		req.FromSequence = n
	}
	fromTime, ok, err := stringField(m, "from_time")
	if err != nil {
		return err
	}
	if ok {
		// As occurred_at: a string that is no time is 422.
		if req.FromTime, err = parseTime(fromTime); err != nil {
			return &domain.ValidationError{Fields: []domain.FieldError{{Field: "from_time", Message: err.Error()}}}
		}
	}
	if len(missing) > 0 {
		return &domain.ValidationError{Fields: missing}
	}
	owner, _ := subscriber(c)
	sub, err := s.subs.Create(c.Request().Context(), owner, req)
	if err != nil {
		if errors.Is(err, webhooks.ErrTooMany) {
			return problem(http.StatusConflict, "conflict", "Conflict",
				"this token has as many subscriptions as allowed; delete one first")
		}
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/subscriptions/"+sub.ID)
	return c.JSON(http.StatusCreated, sub)
}

// sequenceField decodes from_sequence: a JSON number (else 400) that is a
// whole number of at least 1 (else 422).
func sequenceField(raw json.RawMessage) (uint64, error) {
	var num json.Number
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] == '"' || json.Unmarshal(t, &num) != nil {
		return 0, badRequest("a field has the wrong type", domain.FieldError{Field: "from_sequence", Message: "must be a number"})
	}
	n, err := strconv.ParseUint(num.String(), 10, 64)
	if err != nil || n < 1 {
		return 0, &domain.ValidationError{Fields: []domain.FieldError{{Field: "from_sequence",
			Message: "must be a stream sequence, a whole number of at least 1"}}}
	}
	return n, nil
}

// listSubscriptions: GET /v1/subscriptions — the caller's own; admins see all.
func (s *Server) listSubscriptions(c echo.Context) error {
	owner, all := subscriber(c)
	if all {
		owner = ""
	}
	return c.JSON(http.StatusOK, map[string]any{"items": s.subs.List(owner)})
}

// ownSubscription finds the subscription named in the path. Another
// owner's is a 404, as if it did not exist.
func (s *Server) ownSubscription(c echo.Context) (webhooks.Subscription, error) {
	id := c.Param("id")
	if err := domain.CheckID(id); err != nil {
		return webhooks.Subscription{}, err
	}
	sub, err := s.subs.Get(id)
	if err != nil {
		return sub, err
	}
	if owner, all := subscriber(c); !all && sub.Owner != owner {
		return webhooks.Subscription{}, fmt.Errorf("subscription %s: %w", id, domain.ErrNotFound)
	}
	return sub, nil
}

// subscriptionWithHealth is the answer of GET /v1/subscriptions/{id}: the
// subscription and, added to it, its delivery health.
type subscriptionWithHealth struct {
	webhooks.Subscription
	// Health is absent when NATS does not answer: the subscription is
	// still shown, as it is kept in memory.
	Health *webhooks.Health `json:"health,omitempty"`
}

// getSubscription: GET /v1/subscriptions/{id} — with its delivery health.
func (s *Server) getSubscription(c echo.Context) error {
	sub, err := s.ownSubscription(c)
	if err != nil {
		return err
	}
	out := subscriptionWithHealth{Subscription: sub}
	// Bounded: without NATS the subscription is still shown, promptly.
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	h, err := s.subs.Health(ctx, sub.ID)
	switch {
	case err == nil:
		out.Health = &h
	case errors.Is(err, domain.ErrNotFound):
		return err // deleted meanwhile
	default:
		s.log.Warn("webhook subscription health not read", "subscription", sub.ID, "err", err)
	}
	return c.JSON(http.StatusOK, out)
}

// pauseSubscription: POST /v1/subscriptions/{id}/pause — delivery stops on
// every instance and keeps its position; pausing twice is no error.
func (s *Server) pauseSubscription(c echo.Context) error {
	return s.setSubscriptionState(c, s.subs.Pause)
}

// resumeSubscription: POST /v1/subscriptions/{id}/resume — delivery goes
// on from where it was paused.
func (s *Server) resumeSubscription(c echo.Context) error {
	return s.setSubscriptionState(c, s.subs.Resume)
}

func (s *Server) setSubscriptionState(c echo.Context, set func(context.Context, string) (webhooks.Subscription, error)) error {
	sub, err := s.ownSubscription(c)
	if err != nil {
		return err
	}
	sub, err = set(c.Request().Context(), sub.ID)
	if errors.Is(err, domain.ErrConflict) {
		return problem(http.StatusConflict, "conflict", "Conflict", "the subscription kept changing meanwhile; retry the request")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sub)
}

// redeliverFailure: POST /v1/subscriptions/{id}/failures/{sequence}/redeliver
// — the failed event is POSTed once more; 200 with the outcome, and a
// delivered failure leaves the list.
func (s *Server) redeliverFailure(c echo.Context) error {
	sub, err := s.ownSubscription(c)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(c.Param("sequence"), 10, 64)
	if err != nil || seq == 0 {
		return badRequest("the sequence must be a stream sequence, a whole number of at least 1",
			domain.FieldError{Field: "sequence", Message: "must be a whole number of at least 1"})
	}
	out, err := s.subs.Redeliver(c.Request().Context(), sub.ID, seq)
	switch {
	case errors.Is(err, webhooks.ErrPaused):
		return problem(http.StatusConflict, "conflict", "Conflict", "the subscription is paused; resume it first")
	case errors.Is(err, webhooks.ErrUndeliverable):
		return problem(http.StatusConflict, "conflict", "Conflict",
			"the stored message fails its checks (see GET /v1/verify); it is never delivered")
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// deleteSubscription: DELETE /v1/subscriptions/{id} — delivery stops.
func (s *Server) deleteSubscription(c echo.Context) error {
	sub, err := s.ownSubscription(c)
	if err != nil {
		return err
	}
	if err := s.subs.Delete(c.Request().Context(), sub.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// subscriptionFailures: GET /v1/subscriptions/{id}/failures — dead letters,
// oldest first.
func (s *Server) subscriptionFailures(c echo.Context) error {
	sub, err := s.ownSubscription(c)
	if err != nil {
		return err
	}
	failures, err := s.subs.Failures(c.Request().Context(), sub.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"items": failures})
}
