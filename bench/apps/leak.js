// After LEAK_AFTER_MS (default 2000), allocates LEAK_MB (default 300) MiB,
// writes every page, records "<pid> <epoch ms>" in LEAK_FILE, and idles:
// the memory-limit benchmark times how long each manager takes to act.
const fs = require('fs');
const mb = Number(process.env.LEAK_MB || 300);
setTimeout(() => {
  const b = Buffer.alloc(mb << 20, 1);
  fs.appendFileSync(process.env.LEAK_FILE, `${process.pid} ${Date.now()}\n`);
  setInterval(() => b[0]++, 1000);
}, Number(process.env.LEAK_AFTER_MS || 2000));
setInterval(() => {}, 1000);
