// A receiver of bench/bus.py (started as 4 instances): hears what
// bus-send.js broadcasts, over tend's bus (the stock `nats` package, one
// subscription) or pm2's (pm2.launchBus from the pm2 module, the
// 'process:msg' events of pm2's daemon), and writes what it heard to
// $BUS_DIR, <n> being its instance number:
//
//   sub-<n>          subscribed (nats: after the server confirmed it)
//   ready-<n>        heard a first probe: the path works end to end
//   lat-<n>.json     latency phase over ("E" heard, or nothing for
//                    BUS_QUIET_MS, or stop-lat exists): every latency in
//                    µs (now - the sender's timestamp, both
//                    performance.timeOrigin + performance.now()),
//                    received, distinct, duplicates
//   tput-<r>-<n>.json  throughput round r over (likewise, "F" or
//                    stop-tput-<r>): received, distinct, duplicates, time
//                    of the first and the last message; the next "T" is
//                    round r+1 (rounds follow each other: the benchmark
//                    starts one when every receiver is done with the last)
//
// It exits if $BUS_DIR disappears. BUS_TRANSPORT none: idle.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const dir = process.env.BUS_DIR;
const transport = process.env.BUS_TRANSPORT || "none";
const latN = Number(process.env.BUS_LAT_N || 3000);
const tputN = Number(process.env.BUS_TPUT_N || 200000);
const quiet = Number(process.env.BUS_QUIET_MS || 10000);
const inst = process.env.TEND_INSTANCE ?? process.env.NODE_APP_INSTANCE ?? String(process.pid);
const SUBJECT = "bench.bus";

const now = () => performance.timeOrigin + performance.now();

// host:port of TEND_BUS_URL, without the credentials: nats.js 2.29.3 takes
// the first ":<digits>" after the scheme as the port, so
// "nats://tend:<secret>@127.0.0.1:PORT" goes to a wrong port when the
// secret starts with a digit (tend's now start with "p"; a bus.json kept
// from an older tend may not). The credentials go as user and pass.
function server() {
  const u = new URL(process.env.TEND_BUS_URL);
  return `${u.hostname}:${u.port}`;
}

function write(name, value) {
  const tmp = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(tmp, typeof value === "string" ? value : JSON.stringify(value));
  fs.renameSync(tmp, path.join(dir, name));
}

function fail(err) {
  try {
    write(`error-recv-${inst}`, String(err && err.stack ? err.stack : err));
  } catch (_) {
    // the directory may be gone
  }
  console.error(err);
  process.exit(1);
}

class Phase {
  constructor(name, n) {
    this.name = name;
    this.seen = new Uint8Array(n);
    this.received = 0;
    this.distinct = 0;
    this.dup = 0;
    this.first = 0;
    this.last = 0;
    this.done = false;
    this.lat = name === "lat" ? [] : null;
  }

  hear(seq, t) {
    if (this.done) return;
    if (this.received === 0) this.first = t;
    this.last = t;
    this.received++;
    if (seq >= 0 && seq < this.seen.length) {
      if (this.seen[seq]) this.dup++;
      else {
        this.seen[seq] = 1;
        this.distinct++;
      }
    }
  }

  finish(ended) {
    if (this.done) return;
    this.done = true;
    const out = { instance: inst, pid: process.pid, ended, received: this.received, distinct: this.distinct,
      dup: this.dup, first_ms: this.first, last_ms: this.last };
    if (this.lat) out.lat_us = this.lat;
    write(`${this.name}-${inst}.json`, out);
  }
}

const lat = new Phase("lat", latN);
let round = 0;
let tput = new Phase(`tput-${round}`, tputN);

function nextRound(ended) {
  tput.finish(ended);
  tput = new Phase(`tput-${++round}`, tputN);
}
let probed = false;

// One message: kind, sequence number, and a function that reads the
// sender's timestamp (parsed only when needed).
function onMessage(kind, seq, ts) {
  const t = now();
  switch (kind) {
    case "P":
      if (!probed) {
        probed = true;
        write(`ready-${inst}`, String(process.pid));
      }
      break;
    case "L":
      if (!lat.done) {
        lat.hear(seq, t);
        lat.lat.push(Math.round((t - ts()) * 1000));
      }
      break;
    case "E":
      lat.finish("marker");
      break;
    case "T":
      tput.hear(seq, t);
      break;
    case "F":
      nextRound("marker");
      break;
  }
}

// Bytes of "K 0000000123 1733450000000.123 xxx": kind at 0, sequence
// number at 2..12, timestamp from 13 to the next space.
function seqOf(b) {
  let n = 0;
  for (let i = 2; i < 12; i++) n = n * 10 + (b[i] - 48);
  return n;
}

function tsOf(b) {
  let end = 13;
  while (end < b.length && b[end] !== 32) end++;
  return Number(Buffer.from(b.buffer, b.byteOffset + 13, end - 13).toString("latin1"));
}

async function transportNats() {
  const { connect } = require("nats");
  const nc = await connect({
    servers: server(),
    user: process.env.TEND_BUS_USER,
    pass: process.env.TEND_BUS_PASSWORD,
    name: `bus-recv-${inst}`,
  });
  nc.subscribe(SUBJECT, {
    callback: (err, m) => {
      if (err) return fail(err);
      const b = m.data;
      onMessage(String.fromCharCode(b[0]), seqOf(b), () => tsOf(b));
    },
  });
  await nc.flush(); // the server has the subscription
  write(`sub-${inst}`, String(process.pid));
  nc.closed().then((err) => fail(err || new Error("connection closed")));
}

function transportPM2() {
  const pm2 = require("pm2");
  pm2.launchBus((err, bus) => {
    if (err) return fail(err);
    bus.on("process:msg", (packet) => {
      const s = packet && packet.data;
      if (typeof s !== "string") return;
      onMessage(s[0], Number(s.slice(2, 12)), () => Number(s.slice(13, s.indexOf(" ", 13))));
    });
    // Connected to pm2's bus socket (launchBus calls back on 'connect').
    write(`sub-${inst}`, String(process.pid));
  });
}

// Every 250 ms: leave if the run is gone; end a phase that went quiet or
// that the benchmark stopped.
setInterval(() => {
  if (!dir || !fs.existsSync(dir)) process.exit(0);
  const t = now();
  if (!lat.done) {
    if (fs.existsSync(path.join(dir, "stop-lat"))) lat.finish("stopped");
    else if (lat.received > 0 && t - lat.last > quiet) lat.finish("quiet");
  }
  if (fs.existsSync(path.join(dir, `stop-${tput.name}`))) nextRound("stopped");
  else if (tput.received > 0 && t - tput.last > quiet) nextRound("quiet");
}, 250);

if (transport === "nats") transportNats().catch(fail);
else if (transport === "pm2") transportPM2();
