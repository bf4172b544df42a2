#!/bin/sh
# Reports a number to tend from a shell script: the line goes to the
# daemon's socket with curl, which tend traces back to this instance.
#   tend start examples/metrics/metrics.sh
while true; do
  n=$(ls /tmp | wc -l)
  curl -s --unix-socket "$TEND_HOME/tend.sock" --data-binary "METRIC=tmp_files $n" http://tend/v1/notify >/dev/null
  sleep 5
done
