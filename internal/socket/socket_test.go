package socket

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathTooLong(t *testing.T) {
	t.Parallel()
	if _, err := Path("/tmp/" + strings.Repeat("x", 100)); !errors.Is(err, ErrPathTooLong) || !strings.Contains(err.Error(), "set TEND_HOME to a shorter directory") {
		t.Errorf("Path(long) = %v; want ErrPathTooLong with the fix", err)
	}
	if p, err := Path("/tmp/h"); err != nil || p != "/tmp/h/tend.sock" {
		t.Errorf("Path(/tmp/h) = %q, %v", p, err)
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	home, err := os.MkdirTemp("/tmp", "sk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := EnsureHome(home); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(home); fi.Mode().Perm() != 0o700 {
		t.Errorf("EnsureHome left mode %v; want 0700", fi.Mode().Perm())
	}
	path := filepath.Join(home, Name)
	// A stale file, as a killed daemon leaves, is replaced.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale file: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v; want 0600", fi.Mode().Perm())
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			if uid, err := PeerUID(c); err != nil || uid != os.Getuid() {
				t.Errorf("PeerUID = %d, %v; want %d", uid, err, os.Getuid())
			}
			c.Close()
		}
	}()
	// A live socket is not taken over.
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("second Listen = %v; want a refusal", err)
	}
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ln.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the socket file outlived its listener: %v", err)
	}
}

func TestEnsureHomeRefusesSharedDirs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := EnsureHome(shared); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("EnsureHome(a 1777 directory) = %v; want a refusal", err)
	}
	if fi, _ := os.Stat(shared); fi.Mode()&os.ModeSticky == 0 {
		t.Error("EnsureHome changed the shared directory it refused")
	}
	if os.Getuid() == 0 {
		other := filepath.Join(dir, "other")
		if err := os.Mkdir(other, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := EnsureHome(other); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("EnsureHome(another user's directory) = %v; want a refusal", err)
		}
	}
}
