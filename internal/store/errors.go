package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"gocloud.dev/gcerrors"
)

// OpError records a failed store operation. Its message names the operation,
// the store's redacted URL and the key; Unwrap gives the cause, which wraps
// one of the package sentinels when one applies (errors.Is(err, ErrNotExist)).
type OpError struct {
	Op  string // "get", "open", "stat", "put" (Put, PutStream), "put-if-absent", "list", "delete"
	URL string // the store root URL, credentials redacted
	Key string // the object key (or list prefix)
	Err error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("%s %s key %q: %v", e.Op, e.URL, e.Key, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a transient failure that may succeed
// when the operation is tried again: errors wrapping ErrTransient (injected
// faults included), network timeouts and connection resets, truncated
// responses, and backend codes meaning "unavailable" or "throttled".
//
// It is false for nil, ErrNotExist, ErrPreconditionFailed, ErrInvalidKey,
// ErrUnsupportedScheme and context cancellation or deadline errors: retrying
// those cannot help (or the caller asked to stop).
//
// Caution: a retryable error from Put or PutIfAbsent is ambiguous; the write
// may have landed (a lost response). Callers of PutIfAbsent must re-read the
// key before concluding they lost or won.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	for _, final := range []error{
		context.Canceled, context.DeadlineExceeded,
		ErrNotExist, ErrPreconditionFailed, ErrInvalidKey, ErrUnsupportedScheme,
	} {
		if errors.Is(err, final) {
			return false
		}
	}
	if errors.Is(err, ErrTransient) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	for _, errno := range []syscall.Errno{
		syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, syscall.EAGAIN,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	if gcerrors.Code(err) == gcerrors.ResourceExhausted {
		return true
	}
	return retryableHTTPStatus(err)
}

// retryableHTTPStatus is true for SDK errors carrying an HTTP status of 429
// (throttled) or 5xx except 501 (not implemented).
func retryableHTTPStatus(err error) bool {
	var hs interface{ HTTPStatusCode() int }
	if !errors.As(err, &hs) {
		return false
	}
	c := hs.HTTPStatusCode()
	return c == 429 || (c >= 500 && c <= 599 && c != 501)
}

// ValidateKey checks that key is a clean relative '/'-separated path, the
// only form every backend maps to the same object. The error wraps
// ErrInvalidKey.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: %q has a leading or trailing '/'", ErrInvalidKey, key)
	}
	if strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("%w: %q contains a NUL byte or backslash", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" segment", ErrInvalidKey, key)
		}
	}
	return nil
}

// validatePrefix checks a List prefix or startAfter value: empty is allowed,
// a trailing '/' is allowed, otherwise the same rules as keys apply.
func validatePrefix(p string) error {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return ValidateKey(p)
}
