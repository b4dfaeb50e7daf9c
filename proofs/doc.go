// Package proofs lets someone who trusts only the service's public key
// check the event history without trusting the service or seeing all of it.
//
// Verify (eventstore) proves that the stream is internally consistent, but
// a stream rewritten end to end with every hash recomputed is consistent
// too, and an auditor who is shown one engagement cannot run Verify at all.
// This package adds what closes both gaps: an RFC 6962 Merkle tree over
// every stored message's chain hash in stream order (built with
// github.com/transparency-dev/merkle), Ed25519-signed checkpoints of that
// tree (kept on a JetStream stream of their own, with the public keys that
// sign them), inclusion proofs of one engagement's events against a
// checkpoint, consistency proofs between checkpoints, and the offline
// checks of a proof file and of an exported bundle, which need no server and
// no NATS. The formats are documented in README.md ("Signed checkpoints and
// proofs") precisely enough to re-implement the checks elsewhere.
//
// It is a package of its own because it is a capability beside the event
// store, not part of it: it reads the stream through eventstore and keeps
// its own stream on the store's connection, as the token store does. It
// imports domain and eventstore; api, the web UI and the CLI import it.
package proofs
