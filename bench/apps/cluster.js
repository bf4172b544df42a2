// The cluster benchmarks' app: a plain node:http server on $PORT (3000 if
// unset) that answers "ok <pid>", so that a load generator can tell the
// instances apart.
//
//   GET /cpu   the same answer after a fixed amount of CPU work (~1 ms here):
//              shows whether the instances use more than one core;
//   GET /...   anything else answers at once.
//
// On SIGINT or SIGTERM it closes its server (no new connections; Node closes
// the idle keep-alive ones) and exits once the server is closed. When it
// listens it says "ready" on its IPC channel if it has one (pm2's
// --wait-ready, tend's process.send('ready')). Nothing in it knows about a
// manager: under tend a preload hands it the daemon's socket.
"use strict";
const http = require("node:http");

const port = Number(process.env.PORT || 3000);
const CPU_ROUNDS = 60000; // ~1 ms of work on the benchmark VM

function work() {
  let x = 0;
  for (let i = 0; i < CPU_ROUNDS; i++) x = (x + Math.sqrt(i) * 31) % 1000003;
  return x;
}

const server = http.createServer((req, res) => {
  if (req.url === "/cpu") work();
  const body = "ok " + process.pid;
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
});

server.listen(port, () => {
  if (process.send) process.send("ready");
});

let closing = false;
function shutdown() {
  if (closing) return;
  closing = true;
  server.close(() => process.exit(0));
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
