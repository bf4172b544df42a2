// A plain Node.js HTTP server, as pm2 users write them: it listens on
// $PORT, and closes its server on SIGINT (tend's default stop signal) so
// requests in flight finish before it exits.
const http = require('http');

const port = Number(process.env.PORT || 3000);
const server = http.createServer((req, res) => {
  res.end(`hello from ${process.env.TEND_APP || 'web'} (pid ${process.pid})\n`);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.log(`${sig}: closing the server`);
    server.close(() => process.exit(0));
  });
}
