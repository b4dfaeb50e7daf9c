package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// SSE settings.
const (
	heartbeatEvery = 15 * time.Second
	// streamBuffer bounds what a slow client may fall behind by before it is
	// disconnected; it never slows writers or other clients, each of which
	// has its own consumer.
	streamBuffer = 256
	// streamWriteTimeout bounds one write to an event stream client.
	streamWriteTimeout = 10 * time.Second
)

var errSlowClient = errors.New("client too slow: buffer full")

type frame struct {
	seq     uint64
	typ     domain.EventType
	payload []byte
}

// streamEvents serves GET /v1/events/stream as Server-Sent Events: each
// event as `id: <sequence>`, `event: <type>`, `data: <CloudEvent JSON>`.
// Last-Event-ID (or ?after=) replays stored events after it, then goes live;
// ?since= replays those stored at or after a time; without any the stream
// starts with the next event appended.
func (s *Server) streamEvents(c echo.Context) error {
	sel, after, since, resume, err := streamQuery(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	if !resume {
		if after, err = s.stream.LastSequence(ctx); err != nil {
			return err
		}
	}

	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if since.IsZero() {
		fmt.Fprintf(w, ": following after sequence %d\nretry: 2000\n\n", after)
	} else {
		fmt.Fprintf(w, ": following since %s\nretry: 2000\n\n", since.Format(time.RFC3339Nano))
	}
	w.Flush()

	frames := make(chan frame, streamBuffer)
	done := make(chan error, 1)
	go func() {
		err := s.follow(ctx, after, domain.Filter{Selection: sel, Since: since, Live: true}, frames, c.RealIP())
		cancel()
		done <- err
	}()
	s.streams.Add(1)
	defer s.streams.Add(-1)
	return s.writeFrames(ctx, cancel, w, frames, done)
}

// streamQuery reads the stream's selection and where it starts: resume is
// true when the client named a sequence (Last-Event-ID, or ?after=) or a
// time (?since=, RFC 3339 or a date meaning its midnight UTC).
//
// since and after together are refused: they name two starts. Last-Event-ID
// wins over both, as SSE prescribes: an EventSource opened with ?since=
// reconnects to the same URL with the id of the last event it received, and
// must go on after it, not start over.
func streamQuery(c echo.Context) (sel domain.Selection, after uint64, since time.Time, resume bool, err error) {
	q := c.QueryParams()
	sel = domain.Selection{Kind: domain.Kind(q.Get("kind")), EngagementID: q.Get("engagement")}
	var bad []domain.FieldError
	if sel.Kind != "" && !sel.Kind.Valid() {
		bad = append(bad, domain.FieldError{Field: "kind", Message: "must be agreement, policy, initiative or meeting"})
	}
	if t := q.Get("type"); t != "" {
		if sel.Types = typesFor(t); sel.Types == nil {
			bad = append(bad, domain.FieldError{Field: "type", Message: "must be an event type or <prefix>.* (e.g. agreement.*)"})
		}
	}
	if sel.EngagementID != "" && domain.CheckID(sel.EngagementID) != nil {
		bad = append(bad, domain.FieldError{Field: "engagement", Message: "must be a UUID"})
	}
	from, field := c.Request().Header.Get("Last-Event-ID"), "Last-Event-ID"
	if from == "" {
		from, field = q.Get("after"), "after"
		if v := q.Get("since"); v != "" {
			t, perr := parseTime(v)
			switch {
			case from != "":
				bad = append(bad, domain.FieldError{Field: "since", Message: "must not be sent with after; they name two starts"})
			case perr != nil:
				bad = append(bad, domain.FieldError{Field: "since", Message: perr.Error()})
			default:
				since, resume = t, true
			}
		}
	}
	if from != "" {
		n, perr := strconv.ParseUint(from, 10, 64)
		if perr != nil {
			bad = append(bad, domain.FieldError{Field: field, Message: "must be a stream sequence (a whole number)"})
		}
		after, resume = n, true
	}
	if len(bad) > 0 {
		return sel, 0, time.Time{}, false, badRequest("a stream parameter is not valid", bad...)
	}
	return sel, after, since, resume, nil
}

// follow reads the stream after after, as f selects, into frames until ctx
// ends, the read fails, or the client falls streamBuffer frames behind
// (errSlowClient).
func (s *Server) follow(ctx context.Context, after uint64, f domain.Filter, frames chan<- frame, remote string) error {
	for m, err := range s.stream.Read(ctx, after, f) {
		if err != nil {
			return err
		}
		if m.Err != nil { // verify reports it
			s.log.Warn("not following a message that fails its checks", "sequence", m.Sequence, "err", m.Err)
			continue
		}
		select {
		case frames <- frame{seq: m.Sequence, typ: m.Event.Type, payload: m.Document()}:
		default:
			// Counted here, not by the writer: its write may be the very
			// thing that is stuck (the write deadline ends that).
			s.slowStreams.Add(1)
			s.log.Warn("event stream client too slow; disconnected", "remote", remote, "buffer", streamBuffer)
			return errSlowClient
		}
	}
	return nil
}

// writeFrames writes frames and heartbeats to the client until the reader
// is done, the client goes, or the server closes its streams.
func (s *Server) writeFrames(ctx context.Context, cancel context.CancelFunc, w *echo.Response, frames <-chan frame, done <-chan error) error {
	// http.Server's WriteTimeout would cut every stream after a minute;
	// instead each write gets its own deadline, so a client that stops
	// reading is let go and a healthy stream lasts as long as it likes.
	rc := http.NewResponseController(w.Writer)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) }
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		select {
		case f := <-frames:
			deadline()
			if writeFrame(w, f) != nil {
				return nil
			}
			w.Flush()
		case <-beat.C:
			deadline()
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case err := <-done:
			if err != nil && !errors.Is(err, errSlowClient) && !errors.Is(err, context.Canceled) {
				s.log.Warn("event stream ended", "err", err)
			}
			return nil
		case <-s.closing:
			cancel()
			<-done
			return nil
		case <-ctx.Done():
			<-done
			return nil
		}
	}
}

// writeFrame writes one event: its sequence as the id, its type as the
// event name, each line of the stored CloudEvent as a data line.
func writeFrame(w io.Writer, f frame) error {
	fmt.Fprintf(w, "id: %d\nevent: %s\n", f.seq, f.typ)
	for _, line := range bytes.Split(f.payload, []byte("\n")) {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	_, err := w.Write([]byte("\n"))
	return err
}

// CloseStreams ends every open event stream, so a graceful shutdown does not
// wait for clients that never hang up. Call it before shutting the HTTP
// server down.
func (s *Server) CloseStreams() {
	s.closeOnce.Do(func() { close(s.closing) })
}
