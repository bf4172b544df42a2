-- wrk script of bench/cluster.py.
--
-- At the end it prints one line "WRKJSON {...}" with wrk's own counts
-- (responses, duration, socket errors connect/read/write/timeout, and
-- "status": responses with a status >= 400).
--
-- With WRK_COUNT=1 in the environment it also looks at every response (wrk
-- then parses bodies, which costs it some CPU: the throughput runs go without):
--   pids   2xx responses per instance, from the body "ok <pid>";
--   other  2xx responses with another body;
--   slots  2xx responses per 10 ms of CLOCK_MONOTONIC (the clock of Python's
--          time.monotonic()), for the per-second histogram and the longest
--          gap without a successful response.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("WRK_COUNT") == "1" then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } tendbench_timespec;
    int clock_gettime(int clk_id, tendbench_timespec *tp);
  ]]
  local ts = ffi.new("tendbench_timespec")
  local floor, match = math.floor, string.match
  local CLOCK_MONOTONIC = 1

  -- Globals of each thread's Lua state, read back with thread:get in done().
  pids, slots, other = {}, {}, 0

  function response(status, headers, body)
    if status < 200 or status > 299 then
      return
    end
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    local slot = tonumber(ts.tv_sec) * 100 + floor(tonumber(ts.tv_nsec) / 10000000)
    slots[slot] = (slots[slot] or 0) + 1
    local pid = body and match(body, "^ok (%d+)")
    if pid then
      pids[pid] = (pids[pid] or 0) + 1
    else
      other = other + 1
    end
  end
end

local function merge(into, t)
  for k, v in pairs(t or {}) do
    into[k] = (into[k] or 0) + v
  end
end

local function object(t, keyfmt)
  local out = {}
  for k, v in pairs(t) do
    out[#out + 1] = string.format(keyfmt .. ":%d", k, v)
  end
  return "{" .. table.concat(out, ",") .. "}"
end

function done(summary, latency, requests)
  local pids, slots, other = {}, {}, 0
  for _, t in ipairs(threads) do
    merge(pids, t:get("pids"))
    merge(slots, t:get("slots"))
    other = other + (t:get("other") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,' ..
    '"other":%d,"pids":%s,"slots":%s}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    other, object(pids, '"%s"'), object(slots, '"%d"')))
end
