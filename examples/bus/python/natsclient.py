"""A small NATS client on the standard library only, enough for tend's bus:
connect with credentials, publish, subscribe (callbacks on a reader thread),
answer requests. Where PyPI is reachable, the stock client `nats-py` does
the same with the same TEND_BUS_URL (nats.connect(os.environ["TEND_BUS_URL"]))."""

import itertools
import json
import os
import socket
import threading
from urllib.parse import urlparse


class Msg:
    def __init__(self, client, subject, reply, data):
        self._client = client
        self.subject = subject
        self.reply = reply
        self.data = data

    def respond(self, data):
        if self.reply:
            self._client.publish(self.reply, data)


class Client:
    def __init__(self, url=None, name=""):
        u = urlparse(url or os.environ["TEND_BUS_URL"])
        self._sock = socket.create_connection((u.hostname, u.port or 4222))
        self._file = self._sock.makefile("rb")
        self._wlock = threading.Lock()
        self._subs = {}
        self._sids = itertools.count(1)
        self._pong = threading.Event()
        info = self._file.readline()
        if not info.startswith(b"INFO "):
            raise ConnectionError("not a NATS server: %r" % info[:40])
        connect = {"verbose": False, "pedantic": False, "name": name, "lang": "python-stdlib",
                   "version": "0.1", "protocol": 1, "headers": False, "user": u.username or "",
                   "pass": u.password or ""}
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        line = self._file.readline()
        if line.startswith(b"-ERR"):
            raise ConnectionError(line.decode().strip())
        threading.Thread(target=self._read, daemon=True).start()

    def _send(self, data):
        with self._wlock:
            self._sock.sendall(data)

    def publish(self, subject, data, reply=""):
        if isinstance(data, str):
            data = data.encode()
        head = "PUB %s %s%d\r\n" % (subject, reply + " " if reply else "", len(data))
        self._send(head.encode() + data + b"\r\n")

    def subscribe(self, subject, callback, queue=""):
        sid = next(self._sids)
        self._subs[sid] = callback
        self._send(("SUB %s %s%d\r\n" % (subject, queue + " " if queue else "", sid)).encode())
        return sid

    def flush(self, timeout=5):
        """Wait until the server has processed everything sent so far."""
        self._pong.clear()
        self._send(b"PING\r\n")
        if not self._pong.wait(timeout):
            raise TimeoutError("no PONG from the server")

    def _read(self):
        f = self._file
        while True:
            line = f.readline()
            if not line:
                return
            if line.startswith(b"MSG "):
                parts = line.split()
                subject, sid = parts[1].decode(), int(parts[2])
                reply = parts[3].decode() if len(parts) == 5 else ""
                data = f.read(int(parts[-1]) + 2)[:-2]
                cb = self._subs.get(sid)
                if cb:
                    cb(Msg(self, subject, reply, data))
            elif line.startswith(b"PING"):
                self._send(b"PONG\r\n")
            elif line.startswith(b"PONG"):
                self._pong.set()
            elif line.startswith(b"-ERR"):
                print("bus:", line.decode().strip(), flush=True)
