package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/iom-who/engagements/proofs"
)

// proofSamples is how many engagements' proofs are fetched and checked.
const proofSamples = 20

// proofs measures proof_bytes and proof_verify on the running serve: it
// signs a checkpoint (POST /v1/checkpoints; the first after a start reads
// the whole stream into the tree), fetches the proofs of random
// engagements and checks each offline in this process with the public key
// alone, as `engagements verify --proof` does.
func (h *harness) proofs(ctx context.Context, base, token string, ids []string) []Metric {
	size := Metric{Key: "proof_bytes", Name: fmt.Sprintf("one engagement's proof: its hashes (32 bytes each), max of the samples, %d events", h.o.events),
		Unit: "KB", Target: Target{Text: "< 10 KB", Below: 10}}
	check := Metric{Key: "proof_verify", Name: "offline check of one engagement's proof (max of the samples)",
		Unit: "ms", Target: Target{Text: "< 50 ms", Below: 50}}
	fail := func(err error) []Metric {
		size.Problems = append(size.Problems, err.Error())
		check.Problems = append(check.Problems, err.Error())
		return []Metric{size, check}
	}
	call := func(method, path string) ([]byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
		if err != nil {
			return nil, 0, err
		}
		req.Header = authHeader(token, false)
		began := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		took := time.Since(began)
		if err == nil && resp.StatusCode >= 300 {
			err = fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
		}
		return b, took, err
	}
	h.logf("POST /v1/checkpoints (the first after the start builds the tree from the whole stream)")
	_, took, err := call(http.MethodPost, "/v1/checkpoints")
	if err != nil {
		return fail(err)
	}
	h.logf("  signed in %.2f s", took.Seconds())
	h.extra("first checkpoint after a start (reads the stream into the tree)", "%.2f s", took.Seconds())
	body, _, err := call(http.MethodGet, "/v1/keys")
	if err != nil {
		return fail(err)
	}
	var keys struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &keys); err != nil || len(keys.Keys) == 0 {
		return fail(fmt.Errorf("GET /v1/keys: %s", body))
	}
	var trusted []ed25519.PublicKey
	for _, k := range keys.Keys {
		var pk struct {
			PEM string `json:"pem"`
		}
		_ = json.Unmarshal(k, &pk)
		pub, err := proofs.ParsePublicKey([]byte(pk.PEM))
		if err != nil {
			return fail(err)
		}
		trusted = append(trusted, pub)
	}
	var hashes, beyond, files, fetch, verify []float64
	events := 0
	for range proofSamples {
		id := ids[rand.IntN(len(ids))]
		body, took, err := call(http.MethodGet, "/v1/engagements/"+id+"/proof")
		if err != nil {
			return fail(err)
		}
		fetch = append(fetch, ms(took))
		var f proofs.File
		if err := json.Unmarshal(body, &f); err != nil {
			return fail(err)
		}
		// What the events take without their proofs, as the file writes them.
		own := 0
		for _, e := range f.Events {
			e.Inclusion = nil
			b, _ := json.Marshal(e)
			own += len(b) + 1
		}
		events += len(f.Events)
		n := len(f.Head.Inclusion)
		for _, e := range f.Events {
			n += len(e.Inclusion)
		}
		hashes = append(hashes, float64(n*32)/1000)
		beyond = append(beyond, float64(len(body)-own)/1000)
		files = append(files, float64(len(body))/1000)
		began := time.Now()
		if _, err := proofs.VerifyProof(body, trusted); err != nil {
			return fail(fmt.Errorf("the proof of %s does not check out: %w", id, err))
		}
		verify = append(verify, ms(time.Since(began)))
	}
	size.Ours, check.Ours = slices.Max(hashes), slices.Max(verify)
	h.logf("  proofs: %.1f KB of hashes at most (files %.1f KB median), checked in %.2f ms at most", size.Ours, median(files), check.Ours)
	h.extra("one engagement's proof", "%d samples, %.1f events each on average: hashes median %.1f / max %.1f KB (raw); the JSON file median %.1f KB, of which beyond the events (hex hashes, checkpoint, syntax) median %.1f / max %.1f KB; GET median %.1f ms; offline check median %.2f / max %.2f ms",
		proofSamples, float64(events)/proofSamples, median(hashes), size.Ours, median(files), median(beyond), slices.Max(beyond), median(fetch), median(verify), check.Ours)
	return []Metric{size, check}
}
