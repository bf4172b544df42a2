// Prints numbered 100-byte lines on stdout as fast as it can, one write per
// line, honouring backpressure (waits for 'drain' when write() says the
// stream is full), for a number of seconds. Then writes what it did, as JSON,
// to a result file.
//
//   node logspam.js <seconds> <result file>
//
// A line is "L" + a 10-digit sequence number + " " + 87 "x" + "\n": the
// benchmark reads the log file back and counts the numbers that are missing.
"use strict";
const fs = require("node:fs");

const seconds = Number(process.argv[2] || 5);
const resultFile = process.argv[3];
const pad = " " + "x".repeat(87) + "\n";
const start = Date.now();
const deadline = start + seconds * 1000;
let n = 0;

function pump() {
  for (;;) {
    if ((n & 1023) === 0 && Date.now() >= deadline) return finish();
    const ok = process.stdout.write("L" + String(n).padStart(10, "0") + pad);
    n++;
    if (!ok) {
      process.stdout.once("drain", pump);
      return;
    }
  }
}

function finish() {
  const end = Date.now();
  if (resultFile) {
    fs.writeFileSync(resultFile, JSON.stringify({ lines: n, start_ms: start, end_ms: end }));
  }
  // Nothing else to do: node exits once stdout has flushed what it holds.
}

pump();
