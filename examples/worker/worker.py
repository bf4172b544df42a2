"""A background worker: it does a job every second and logs it, to stdout
and (now and then) to stderr. It stops cleanly on SIGINT."""
import os
import signal
import sys
import time

running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)

n = 0
while running:
    n += 1
    print(f"job {n} done by worker {os.environ.get('TEND_INSTANCE', '?')}", flush=True)
    if n % 5 == 0:
        print(f"job {n}: slow upstream, retried", file=sys.stderr, flush=True)
    time.sleep(1)
print("worker stopped cleanly", flush=True)
