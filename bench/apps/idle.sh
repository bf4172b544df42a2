#!/usr/bin/env bash
# An idle app: a shell loop that sleeps. It exits at once on SIGINT or
# SIGTERM (`wait` is interruptible, a foreground `sleep` is not), so that
# stopping 50 of them does not wait for each manager's kill timeout.
trap 'kill "$child" 2>/dev/null; exit 0' INT TERM
while :; do
  sleep 3600 &
  child=$!
  wait "$child"
done
