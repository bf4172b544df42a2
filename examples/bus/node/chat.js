// An example app for tend's bus, in Node.js with the stock `nats` package
// (npm install in this folder first): every instance says hello on
// demo.chat every few seconds and prints what the others say; it answers
// `tend trigger <app> ping` and `tend trigger <app> stats`.
const { connect, StringCodec } = require('nats');

const app = process.env.TEND_APP;
const instance = process.env.TEND_INSTANCE;
const me = `${app}[${instance}]`;
const sc = StringCodec();

(async () => {
  // nats.js reads no credentials from the URL: pass them alongside.
  const nc = await connect({
    servers: process.env.TEND_BUS_URL,
    user: process.env.TEND_BUS_USER,
    pass: process.env.TEND_BUS_PASSWORD,
    name: me,
    maxReconnectAttempts: -1,
  });
  let heard = 0;
  let said = 0;

  // A broadcast: every subscriber of demo.chat gets each message.
  nc.subscribe('demo.chat', {
    callback: (err, msg) => {
      if (err) return;
      heard++;
      console.log(`${me} heard: ${sc.decode(msg.data)}`);
    },
  });

  // Actions: tend sends `tend trigger <app> <action> [params]` to
  // tend.action.<app>.<instance>.<action> and prints the answer.
  const action = (name, fn) =>
    nc.subscribe(`tend.action.${app}.${instance}.${name}`, {
      callback: (err, msg) => { if (!err) msg.respond(sc.encode(fn(sc.decode(msg.data)))); },
    });
  action('ping', () => `pong from ${me}`);
  action('stats', () => JSON.stringify({ heard, said }));

  const timer = setInterval(() => {
    said++;
    nc.publish('demo.chat', sc.encode(`hello from ${me} (Node.js)`));
  }, 3000);

  const stop = async () => { clearInterval(timer); await nc.drain(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
})().catch((err) => { console.error(err); process.exit(1); });
