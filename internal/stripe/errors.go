package stripe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	stripego "github.com/stripe/stripe-go/v76"
)

// Class is how the operator treats a Stripe error; the controllers' error table (docs/architecture.md, "The
// reconcile loop") maps each class to a condition reason and a retry.
type Class int

const (
	// ClassNone is no error.
	ClassNone Class = iota
	// ClassRateLimited is a 429 rate_limit: the shared budget backs off; retried without error spam.
	ClassRateLimited
	// ClassUnavailable is a 5xx, api_error, connection error or timeout: retried with exponential backoff.
	ClassUnavailable
	// ClassInProgress is a 409 idempotency_key_in_use or a lock_timeout: retried shortly.
	ClassInProgress
	// ClassIdempotencyMismatch is an idempotency_error (same key, other parameters): the crash-safe create's
	// recovery path runs.
	ClassIdempotencyMismatch
	// ClassInvalidRequest is a 400 invalid_request_error: Stalled until the spec changes.
	ClassInvalidRequest
	// ClassNotFound is a 404 resource_missing: an ID named in the spec, or the object itself, is gone.
	ClassNotFound
	// ClassAuthentication is a 401: Stalled; the key is not used again until its Secret changes.
	ClassAuthentication
	// ClassPermission is a 403 (a restricted key lacks a permission): Stalled until the Secret changes.
	ClassPermission
	// ClassCard is a card_error: the PaymentFailed condition; webhooks drive what comes next.
	ClassCard
)

var classNames = map[Class]string{
	ClassNone: "none", ClassRateLimited: "rate_limited", ClassUnavailable: "unavailable",
	ClassInProgress: "in_progress", ClassIdempotencyMismatch: "idempotency_mismatch",
	ClassInvalidRequest: "invalid_request", ClassNotFound: "not_found", ClassAuthentication: "authentication",
	ClassPermission: "permission", ClassCard: "card_error",
}

func (c Class) String() string { return classNames[c] }

// Error is a classified Stripe error. It wraps the original error and carries what status conditions, events and
// logs need; it never carries the API key.
type Error struct {
	Class       Class
	HTTPStatus  int
	Code        string
	Message     string
	Param       string
	DeclineCode string
	RequestID   string
	// IdempotencyKey is the key of the write that failed ("" for a read).
	IdempotencyKey string
	Err            error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("stripe %s", e.Class)
	if e.HTTPStatus != 0 {
		msg += fmt.Sprintf(" (%d", e.HTTPStatus)
		if e.Code != "" {
			msg += " " + e.Code
		}
		msg += ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Param != "" {
		msg += " (param " + e.Param + ")"
	}
	if e.RequestID != "" {
		msg += " [request " + e.RequestID + "]"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Classify turns any error from a Stripe call into an *Error; nil stays nil.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	var se *stripego.Error
	if !errors.As(err, &se) {
		// Connection errors, timeouts, canceled contexts, and anything else that never got a Stripe answer.
		var ne net.Error
		msg := err.Error()
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			msg = "timed out: " + msg
		}
		return &Error{Class: ClassUnavailable, Message: msg, Err: err}
	}
	out := &Error{HTTPStatus: se.HTTPStatusCode, Code: string(se.Code), Message: se.Msg, Param: se.Param,
		DeclineCode: string(se.DeclineCode), RequestID: se.RequestID, Err: err}
	switch {
	case se.HTTPStatusCode == http.StatusUnauthorized:
		out.Class = ClassAuthentication
	case se.HTTPStatusCode == http.StatusForbidden:
		out.Class = ClassPermission
	case se.Code == stripego.ErrorCodeLockTimeout || se.Code == stripego.ErrorCodeIdempotencyKeyInUse ||
		se.HTTPStatusCode == http.StatusConflict:
		out.Class = ClassInProgress
	case se.HTTPStatusCode == http.StatusTooManyRequests:
		out.Class = ClassRateLimited
	case se.Type == stripego.ErrorTypeIdempotency:
		out.Class = ClassIdempotencyMismatch
	case se.Type == stripego.ErrorTypeCard:
		out.Class = ClassCard
	case se.HTTPStatusCode >= 500 || se.Type == stripego.ErrorTypeAPI || se.HTTPStatusCode == 0:
		out.Class = ClassUnavailable
	case se.HTTPStatusCode == http.StatusNotFound || se.Code == stripego.ErrorCodeResourceMissing:
		out.Class = ClassNotFound
	default:
		out.Class = ClassInvalidRequest
	}
	return out
}

// IsNotFound reports whether err is Stripe's 404 resource_missing.
func IsNotFound(err error) bool {
	ce := Classify(err)
	return ce != nil && ce.Class == ClassNotFound
}
