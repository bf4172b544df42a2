package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tend-pm/tend/internal/api"
)

func spec(name string) api.AppSpec {
	s := api.NewSpec()
	s.Name, s.Command, s.Cwd = name, []string{"/bin/true"}, "/"
	return s
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	want := &File{NextID: 3, Apps: []App{
		{ID: 0, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Running: true, Spec: spec("a"),
			Instances: []Instance{{Slot: 0, PID: 42, StartTicks: 7, Restarts: 2}}},
		{ID: 2, Running: false, Spec: spec("b")},
	}}
	s := NewStore(path)
	if err := s.Write(1, want); err != nil {
		t.Fatal(err)
	}
	// An older snapshot arriving late must not overwrite a newer one.
	if err := s.Write(0, &File{}); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load after Write (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v (%v); want 0600", fi.Mode().Perm(), err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".state.json.tmp*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestLoadMissingIsEmpty(t *testing.T) {
	t.Parallel()
	f, err := Load(filepath.Join(t.TempDir(), "none.json"))
	if err != nil || len(f.Apps) != 0 {
		t.Errorf("Load(missing) = %+v, %v; want an empty state", f, err)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, want string
	}{
		{"syntax", "{\n  \"apps\": [\n    {\"id\": 0,,}\n  ]\n}\n", "state.json:3:"},
		{"newer format", `{"version": 99, "apps": []}`, "written by a newer tend"},
		{"invalid spec", `{"version": 1, "apps": [{"id": 0, "spec": {"name": "", "command": ["/bin/true"], "cwd": "/"}}]}`, "app name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s) = %v; want an error with %q", tt.name, err, tt.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Error("Load changed the file it refused")
			}
		})
	}
}

func TestWriteFileKeepsOldOnFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if os.Getuid() == 0 {
		// root writes through the mode; use a path whose directory is a file.
		if err := WriteFile(filepath.Join(path, "x"), []byte("new")); err == nil {
			t.Fatal("WriteFile under a regular file succeeded")
		}
	} else if err := WriteFile(path, []byte("new")); err == nil || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("WriteFile in a read-only directory: %v; want a permission error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after a failed write the file holds %q; want the old content", b)
	}
}
