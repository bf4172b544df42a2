#!/usr/bin/env bash
# A shell loop, to show that tend runs anything.
while true; do
  echo "tick $(date +%T)"
  sleep 2
done
