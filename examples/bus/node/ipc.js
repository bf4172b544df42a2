// An app written for pm2's messaging, which runs under tend unchanged: no
// NATS client, only Node's IPC channel.
//   tend start examples/bus/node/ipc.js --wait-ready --shutdown-with-message
//   tend bus sub 'tend.msg.>'         # what it sends with process.send
//   tend send ipc '{"hello": "you"}'  # arrives on process.on('message')
//   tend trigger ipc count            # an @pm2/io-style action
let count = 0;

process.on('message', (msg) => {
  if (msg === 'shutdown') {          // shutdown_with_message: stop cleanly
    console.log('shutting down');
    process.exit(0);
  }
  if (msg === 'count' || (msg && msg.msg === 'count')) {
    process.send({ type: 'axm:reply', data: { action_name: 'count', return: { count } } });
    return;
  }
  count++;
  console.log('got', JSON.stringify(msg));
  // On the bus as tend.msg.<app>.<instance>, as pm2's bus event process:msg.
  process.send({ type: 'process:msg', topic: 'echo', data: msg });
});

// Register the action the way @pm2/io does, so `tend trigger` asks here.
process.send({ type: 'axm:action', data: { action_name: 'count', opts: null, arity: 1 } });
process.send('ready');               // with --wait-ready: ready now
