// Package e2e holds tend's black-box tests: they build the real binary,
// run its commands as a user would, against a real daemon that starts real
// processes, each test in its own TEND_HOME. The apps are this test binary
// re-executed as scripted children (package testproc).
package e2e
