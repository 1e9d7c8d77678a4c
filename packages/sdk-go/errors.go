package arqon

import (
	"errors"
	"fmt"
)

// Error is every error the SDK returns on purpose: a server's `error` frame (or a failed command `response`), a close
// the client saw, or a client-side condition. Code is one of docs/errors.md (the Code* constants); match on it with
// errors.As, CodeOf, or errors.Is against the sentinels (ErrClientClosed, ...), never on the message.
type Error struct {
	// Code is the stable error code, e.g. "ARQ_FORBIDDEN".
	Code string
	// Message is for humans and may change between releases.
	Message string
	// RequestID is the request the failure answered, when there was one.
	RequestID string
	// ServerRetryable is the server's `retryable` flag (nil when it did not say).
	ServerRetryable *bool
	// Detail carries machine-readable extras: for ARQ_CLIENT_CLOSED the close "code" and "reason".
	Detail map[string]any
	// Cause is the underlying error, if any (see Unwrap).
	Cause error
}

func newError(code, message string) *Error { return &Error{Code: code, Message: message} }

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches another *Error with the same code and no message (the sentinels): errors.Is(err, arqon.ErrClientClosed).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Retryable tells whether the same request may succeed if sent again later: the server's flag when it gave one, else
// true for the retryable codes of docs/errors.md and for ARQ_CONNECTION_CLOSED and ARQ_REQUEST_TIMEOUT.
func (e *Error) Retryable() bool {
	if e.ServerRetryable != nil {
		return *e.ServerRetryable
	}
	return IsRetryableCode(e.Code)
}

// IsRetryableCode reports whether a code means "retry later with backoff" (docs/errors.md; the client-side
// ARQ_CONNECTION_CLOSED and ARQ_REQUEST_TIMEOUT too).
func IsRetryableCode(code string) bool {
	switch code {
	case CodeRateLimited, CodeBackendUnavailable, CodeShuttingDown, CodeInternal, CodeProxyUnavailable,
		CodeConnectionClosed, CodeRequestTimeout:
		return true
	}
	return false
}

// CodeOf returns the code of an *Error anywhere in err's chain, or "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Sentinels for errors.Is.
var (
	ErrConnectionClosed = &Error{Code: CodeConnectionClosed}
	ErrRequestTimeout   = &Error{Code: CodeRequestTimeout}
	ErrClientClosed     = &Error{Code: CodeClientClosed}
	ErrStateConflict    = &Error{Code: CodeStateConflict}
	ErrForbidden        = &Error{Code: CodeForbidden}
	ErrAuthInvalid      = &Error{Code: CodeAuthInvalid}
	ErrAuthExpired      = &Error{Code: CodeAuthExpired}
	ErrNotSubscribed    = &Error{Code: CodeNotSubscribed}
	ErrRoomInvalid      = &Error{Code: CodeRoomInvalid}
)

// Close codes (docs/protocol.md, docs/errors.md).
const (
	CloseNormal             = 1000
	CloseGoingAway          = 1001
	CloseProtocolError      = 1002
	CloseUnsupportedData    = 1003
	CloseAbnormal           = 1006
	ClosePolicyViolation    = 1008
	CloseMessageTooBig      = 1009
	CloseInternalError      = 1011
	CloseServiceRestart     = 1012
	CloseTryAgainLater      = 1013
	CloseSlowConsumer       = 4000
	ClosePingTimeout        = 4001
	CloseRateLimitAbuse     = 4002
	CloseBackendUnavailable = 4003
	CloseTokenExpired       = 4004
	CloseAuthInvalid        = 4500
	CloseForbidden          = 4501
	CloseProtocolViolation  = 4502
	CloseTenantDisabled     = 4503
	CloseKicked             = 4504
)

// ShouldReconnect is the rule of docs/protocol.md: 4000-4499 reconnect, 4500-4999 are terminal, 1000 and
// 1002/1003/1008 are terminal, every other code reconnects.
func ShouldReconnect(code int) bool {
	switch {
	case code >= 4500 && code <= 4999:
		return false
	case code >= 4000 && code <= 4499:
		return true
	}
	switch code {
	case CloseNormal, CloseProtocolError, CloseUnsupportedData, ClosePolicyViolation:
		return false
	}
	return true
}

func clientClosedError(code int, reason string) *Error {
	msg := reason
	if msg == "" {
		msg = fmt.Sprint(code)
	}
	return &Error{Code: CodeClientClosed, Message: "client closed: " + msg, Detail: map[string]any{"code": code, "reason": reason}}
}
