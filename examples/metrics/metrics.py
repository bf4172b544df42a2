"""Reports two numbers to tend over NOTIFY_SOCKET (a unix datagram, as
sd_notify): tend shows them in `tend monit` and serves them on /metrics as
tend_app_queue_depth and tend_app_jobs_done_total. Standard library only.

    tend start examples/metrics/metrics.py
"""
import os
import random
import socket
import time


def metric(line):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return  # not run by tend (or systemd)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(line.encode(), path)


done = 0
while True:
    queued = random.randrange(10)
    done += 1
    metric(f"METRIC=queue_depth {queued} gauge\nMETRIC=jobs_done_total 1 counter")
    print(f"job {done} done, {queued} queued", flush=True)
    time.sleep(1)
