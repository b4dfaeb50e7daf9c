package domain

import (
	"fmt"
	"regexp"
	"time"
)

// Role is what a token may do.
type Role string

// The roles. Admin may do everything; the others as their doc says.
const (
	// RoleAdmin manages tokens and may do everything.
	RoleAdmin Role = "admin"
	// RoleCoordinator records engagements and events, reads state and history.
	RoleCoordinator Role = "coordinator"
	// RoleAuditor reads everything: state, history, log, as-of, export, verify.
	RoleAuditor Role = "auditor"
	// RoleSubscriber reads the event stream and manages its own webhooks.
	RoleSubscriber Role = "subscriber"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleCoordinator, RoleAuditor, RoleSubscriber}

// Valid reports whether r is a role.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Allowed reports whether a token of role r may do what roles may: admin
// may do everything.
func (r Role) Allowed(roles ...Role) bool {
	if r == RoleAdmin {
		return true
	}
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// TokenInfo describes a token; the token itself is shown only once.
type TokenInfo struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

var tokenName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$`)

// CheckTokenName accepts 1–64 letters, digits, '-' and '_' (not first). A
// token's name becomes the actor of the events it records.
func CheckTokenName(name string) error {
	if !tokenName.MatchString(name) {
		return &ValidationError{Fields: []FieldError{{Field: "name",
			Message: "must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit"}}}
	}
	return nil
}

// ErrExists means a resource with that name already exists.
var ErrExists = fmt.Errorf("%w: already exists", ErrConflict)
