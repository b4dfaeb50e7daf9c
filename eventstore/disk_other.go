//go:build !unix

package eventstore

import "errors"

// diskFree is not known here; the watcher then acts on the server's state
// alone.
func diskFree(string) (int64, error) { return 0, errors.ErrUnsupported }
