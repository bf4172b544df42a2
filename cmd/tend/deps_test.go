package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNet keeps package net (and so cgo, through its DNS resolver) out of
// the binary: with it, a default `go build` links dynamically and every
// command starts about 1.7 ms slower (docs/layout.md).
func TestNoNet(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "net" || pkg == "runtime/cgo" {
			t.Errorf("tend imports %s; see docs/layout.md for why it must not", pkg)
		}
	}
}
