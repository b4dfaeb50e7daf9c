package webui

import "time"

// SetClock makes u tell the time with now; call it before u serves a
// request.
func SetClock(u *UI, now func() time.Time) { u.now = now }
