//go:build !linux

package eventstore

// isTmpfs reports whether dir is on tmpfs: only looked for on Linux.
func isTmpfs(string) bool { return false }
