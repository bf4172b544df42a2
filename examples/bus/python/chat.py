"""An example app for tend's bus, in Python: every instance says hello on
demo.chat every few seconds and prints what the others say; it answers
`tend trigger <app> ping` and `tend trigger <app> stats`."""

import json
import os
import signal
import sys
import threading

from natsclient import Client

app, instance = os.environ["TEND_APP"], os.environ["TEND_INSTANCE"]
me = "%s[%s]" % (app, instance)
nc = Client(name=me)
counts = {"heard": 0, "said": 0}


def heard(msg):
    counts["heard"] += 1
    print("%s heard: %s" % (me, msg.data.decode()), flush=True)


# A broadcast: every subscriber of demo.chat gets each message.
nc.subscribe("demo.chat", heard)
# Actions: `tend trigger <app> <action>` arrives on tend.action.<app>.<instance>.<action>.
nc.subscribe("tend.action.%s.%s.ping" % (app, instance), lambda m: m.respond("pong from " + me))
nc.subscribe("tend.action.%s.%s.stats" % (app, instance), lambda m: m.respond(json.dumps(counts)))
nc.flush()

stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(3):
    counts["said"] += 1
    nc.publish("demo.chat", "hello from %s (Python)" % me)
sys.exit(0)
