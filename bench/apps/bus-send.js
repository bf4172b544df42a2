// The sender of bench/bus.py: one instance that broadcasts 128-byte
// messages to the receivers (bus-recv.js), over tend's bus (the stock `nats`
// package) or pm2's (process.send to pm2's daemon, which puts it on its
// bus). It knows nothing of the benchmark beyond a few files in $BUS_DIR:
//
//   1. probe: a "P" message every 20 ms until every receiver has written
//      ready-<n> (it heard one), then write "probed";
//   2. wait for go-lat; latency: BUS_LAT_N "L" messages, one every
//      BUS_LAT_INTERVAL_MS, each carrying performance.timeOrigin +
//      performance.now(); then an "E"; write sent-lat.json;
//   3. for each of BUS_TPUT_ROUNDS rounds r: wait for go-tput-<r>;
//      throughput: BUS_TPUT_N "T" messages as fast as the transport takes
//      them, then an "F"; write sent-tput-<r>.json.
//      nats: nc.publish for each, nc.flush() at the end.
//      pm2: process.send in batches of BUS_BATCH, each batch waiting for
//      the callback of its last send (the IPC channel's backpressure), so
//      the sender does not queue 200 000 messages in its own memory.
//
// A message: kind letter, space, 10-digit sequence number, space,
// timestamp in ms with 3 decimals, space, padding "x" to 128 bytes.
// Then it idles; it exits if $BUS_DIR disappears, or on any error after
// writing it to $BUS_DIR/error-send.
//
// BUS_TRANSPORT: nats (TEND_BUS_URL, TEND_BUS_USER, TEND_BUS_PASSWORD),
// pm2 (process.send), none (idle: the bus-off memory reading).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const dir = process.env.BUS_DIR;
const transport = process.env.BUS_TRANSPORT || "none";
const receivers = Number(process.env.BUS_RECEIVERS || 4);
const latN = Number(process.env.BUS_LAT_N || 3000);
const interval = Number(process.env.BUS_LAT_INTERVAL_MS || 2);
const tputN = Number(process.env.BUS_TPUT_N || 200000);
const rounds = Number(process.env.BUS_TPUT_ROUNDS || 1);
const batch = Number(process.env.BUS_BATCH || 500);
const size = Number(process.env.BUS_SIZE || 128);
const waitMax = Number(process.env.BUS_WAIT_MS || 600000); // any wait of this app
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
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function message(kind, seq) {
  const head = `${kind} ${String(seq).padStart(10, "0")} ${now().toFixed(3)} `;
  return head + "x".repeat(Math.max(0, size - head.length));
}

function write(name, value) {
  const tmp = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(tmp, typeof value === "string" ? value : JSON.stringify(value));
  fs.renameSync(tmp, path.join(dir, name));
}

async function waitFor(cond, what) {
  const deadline = Date.now() + waitMax;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// Exit when the benchmark's directory is gone (the run ended without
// stopping this process).
setInterval(() => {
  if (!dir || !fs.existsSync(dir)) process.exit(0);
}, 1000);

async function transportNats() {
  const { connect } = require("nats");
  const nc = await connect({
    servers: server(),
    user: process.env.TEND_BUS_USER,
    pass: process.env.TEND_BUS_PASSWORD,
    name: "bus-send",
  });
  const enc = new TextEncoder();
  return {
    send: (s) => nc.publish(SUBJECT, enc.encode(s)),
    // Many messages: publish them all, then one flush (a PING/PONG round
    // trip: the server has read everything before it).
    burst: async (n, make) => {
      for (let i = 0; i < n; i++) nc.publish(SUBJECT, enc.encode(make(i)));
      await nc.flush();
    },
  };
}

async function transportPM2() {
  if (typeof process.send !== "function") throw new Error("no IPC channel (process.send)");
  const send = (s, cb) => process.send({ type: "process:msg", topic: SUBJECT, data: s }, cb);
  return {
    send: (s) => send(s),
    burst: async (n, make) => {
      for (let i = 0; i < n; i += batch) {
        const end = Math.min(n, i + batch);
        await new Promise((resolve, reject) => {
          for (let j = i; j < end; j++) {
            if (j === end - 1) send(make(j), (err) => (err ? reject(err) : resolve()));
            else send(make(j));
          }
        });
      }
    },
  };
}

async function main() {
  if (transport === "none") {
    setInterval(() => {}, 1000);
    return;
  }
  const t = transport === "nats" ? await transportNats() : await transportPM2();

  // 1. Probe until every receiver has heard us.
  const readyCount = () => fs.readdirSync(dir).filter((f) => f.startsWith("ready-")).length;
  let probes = 0;
  await waitFor(() => {
    if (readyCount() >= receivers) return true;
    if (probes === 0 || Date.now() - lastProbe >= 20) {
      t.send(message("P", probes++));
      lastProbe = Date.now();
    }
    return false;
  }, `${receivers} receivers to hear a probe`);
  write("probed", String(probes));

  // 2. Latency.
  await waitFor(() => fs.existsSync(path.join(dir, "go-lat")), "go-lat");
  const t0 = performance.now();
  for (let i = 0; i < latN; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
    t.send(message("L", i));
  }
  t.send(message("E", latN));
  write("sent-lat.json", { sent: latN, ms: performance.now() - t0 });

  // 3. Throughput, in rounds.
  for (let r = 0; r < rounds; r++) {
    await waitFor(() => fs.existsSync(path.join(dir, `go-tput-${r}`)), `go-tput-${r}`);
    const t1 = performance.now();
    await t.burst(tputN + 1, (i) => message(i < tputN ? "T" : "F", i));
    write(`sent-tput-${r}.json`, { sent: tputN, ms: performance.now() - t1 });
  }
  setInterval(() => {}, 1000);
}

let lastProbe = 0;
main().catch((err) => {
  try {
    write("error-send", String(err && err.stack ? err.stack : err));
  } catch (_) {
    // the directory may be gone
  }
  console.error(err);
  process.exit(1);
});
