package api

import (
	"errors"
	"fmt"
	"testing"
)

func TestText(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("bad subject: %w", ErrInvalid), "bad subject"},
		{fmt.Errorf("app %q: %w", "web", ErrNotFound), `app "web": not found`}, // written to read with it
		{errors.Join(fmt.Errorf("app a: busy: %w", ErrConflict), fmt.Errorf("app b: busy: %w", ErrConflict)), "app a: busy\napp b: busy"},
		{&Error{Code: CodeFailed, Message: "not every instance answered: failed"}, "not every instance answered"},
		{errors.New("plain: invalid request"), "plain: invalid request"}, // not of the kind: left as it is
	} {
		if got := Text(tt.err); got != tt.want {
			t.Errorf("Text(%q) = %q; want %q", tt.err, got, tt.want)
		}
	}
}
