package api

import (
	"errors"
	"strings"
)

// Error kinds. Handlers wrap these with context (fmt.Errorf("app %q: %w",
// name, api.ErrNotFound)); the server sends the kind as a code and the
// client turns it back into the same sentinel, so errors.Is works across
// the socket.
var (
	ErrInvalid  = errors.New("invalid request")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrFailed is an action that ran and did not succeed, such as a
	// reload whose new process never became ready.
	ErrFailed   = errors.New("failed")
	ErrInternal = errors.New("internal error")
)

// Codes of the error envelope, one per kind.
const (
	CodeInvalid  = "invalid"
	CodeNotFound = "not_found"
	CodeConflict = "conflict"
	CodeFailed   = "failed"
	CodeInternal = "internal"
)

// ErrorBody is the one error envelope of the API:
// {"error":{"code":"not_found","message":"app \"web\": not found"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error received from the daemon. It matches its kind's
// sentinel with errors.Is.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	return kindOf(e.Code) == target
}

func kindOf(code string) error {
	switch code {
	case CodeInvalid:
		return ErrInvalid
	case CodeNotFound:
		return ErrNotFound
	case CodeConflict:
		return ErrConflict
	case CodeFailed:
		return ErrFailed
	default:
		return ErrInternal
	}
}

// Text is err's message for a person: the words of a kind that only
// classify it (": invalid request", ": conflict", ": failed"), which the
// code or the exit status carries, are left off the end. "not found" stays:
// messages are written to read with it ("app \"web\": not found").
//
// Each line is looked at: an action on several apps joins one error per
// app, one per line.
func Text(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for _, k := range []error{ErrInvalid, ErrConflict, ErrFailed} {
		if errors.Is(err, k) {
			for i, l := range lines {
				lines[i] = strings.TrimSuffix(l, ": "+k.Error())
			}
		}
	}
	return strings.Join(lines, "\n")
}

// Classify returns the code and HTTP status for err: the one mapping from
// error kinds to statuses.
func Classify(err error) (code string, status int) {
	switch {
	case errors.Is(err, ErrInvalid):
		return CodeInvalid, 400
	case errors.Is(err, ErrNotFound):
		return CodeNotFound, 404
	case errors.Is(err, ErrConflict):
		return CodeConflict, 409
	case errors.Is(err, ErrFailed):
		return CodeFailed, 422
	default:
		return CodeInternal, 500
	}
}
