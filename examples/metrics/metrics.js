// Reports two numbers to tend, which shows them in `tend monit` and serves
// them on /metrics as tend_app_queue_depth and tend_app_jobs_done_total.
// Node has no unix datagrams, so it posts the same line to the daemon's
// socket; tend knows the sender from the kernel.
//   tend start examples/metrics/metrics.js
const http = require('http');

function metric(line) {
  if (!process.env.TEND_HOME) return; // not run by tend
  const req = http.request({
    socketPath: `${process.env.TEND_HOME}/tend.sock`,
    path: '/v1/notify',
    method: 'POST',
    headers: { 'Content-Type': 'text/plain' },
  });
  req.on('error', () => {}); // metrics are best effort
  req.end(line);
}

let done = 0;
setInterval(() => {
  const queued = Math.floor(Math.random() * 10);
  done += 1;
  metric(`METRIC=queue_depth ${queued} gauge\nMETRIC=jobs_done_total 1 counter`);
  console.log(`job ${done} done, ${queued} queued`);
}, 1000);
