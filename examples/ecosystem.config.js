// A pm2 ecosystem file: tend reads it as pm2 does (with node).
module.exports = {
  apps: [
    {
      name: 'web',
      script: './web/server.js',
      // Cluster mode: the daemon holds port 3000 and the two instances
      // share it, with no change to server.js (see docs/cluster.md).
      instances: 2,
      port: 3000,
      env_production: { NODE_ENV: 'production' },
      kill_timeout: 3000,
    },
    {
      name: 'worker',
      script: './worker/worker.py',
      instances: 2,
      exp_backoff_restart_delay: 100,
      time: true,
    },
    {
      name: 'ticker',
      script: './ticker.sh',
      max_restarts: 5,
    },
  ],
};
