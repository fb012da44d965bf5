-- wrk script of `make bench` (bench/run.py): one customer token per request.
--
-- Arguments after `--`: tokens_file path threads body stop_on_sold_out stop_dir offset
--   tokens_file       one API token per line (the bench customers, written by run.py)
--   threads           wrk's -t, so each thread takes its own slice of the customers
--   stop_on_sold_out  "1": a thread stops counting and stops at the first 409 whose body
--                     says sold_out (the phase "while stock lasts"), "0": run for -d
--   stop_dir          a thread that stops writes a file there; run.py then ends the whole
--                     run (SIGINT), so no thread goes on against a server still busy with
--                     the stopped thread's abandoned connections
--   offset            where each thread starts in its slice (varies the buyers per round)
--
-- Every 2xx answer's order number ("number" in the body, 201 and 202 alike) is kept in
-- the thread's table `numbers`; done() writes them all to stop_dir/numbers.txt, one a
-- line, so run.py can check that each acknowledged order exists (lost acks). A
-- string.find on a body of a few hundred bytes, only for 2xx answers: the hot path of
-- the generator stays as it was.
--
-- Thread t sends the requests of customers t, t+T, t+2T, ... in turn, so one customer's
-- next request comes after every other customer of the slice (5000/T requests), far
-- more than the connections a thread has open: one customer never has two requests in
-- flight, and every customer sends requests.
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local clock = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end

-- setup/done environment -------------------------------------------------------------
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- thread environment -------------------------------------------------------------------
local requests = {}
local index = 0
local stop_on_sold_out = false
local stop_dir = nil
-- read back by done() through thread:get
responses = 0
statuses = {}
numbers = {}
stop_path = nil
t_start = nil
t_end = nil
stopped = false

function init(args)
  local path, nthreads, body = args[1], tonumber(args[2]), args[3]
  stop_on_sold_out = args[4] == "1"
  stop_dir = args[5]
  stop_path = stop_dir -- global, so done() (another Lua state) can read it with thread:get
  local offset = tonumber(args[6] or "0")
  local line = 0
  for token in io.lines(path) do
    if token ~= "" then
      if line % nthreads == id then
        local headers = {
          ["Authorization"] = "Token " .. token,
          ["Content-Type"] = "application/json",
        }
        table.insert(requests, wrk.format("POST", wrk.path, headers, body))
      end
      line = line + 1
    end
  end
  if #requests == 0 then
    error("no tokens for thread " .. id .. " in " .. path)
  end
  index = offset % #requests
end

function request()
  if t_start == nil then
    t_start = now()
  end
  index = index % #requests + 1
  return requests[index]
end

local function keep_number(body)
  if body then
    local _, _, number = string.find(body, '"number":%s*"([^"]+)"')
    if number then
      numbers[#numbers + 1] = number
    end
  end
end

function response(status, headers, body)
  -- An acknowledged purchase is recorded even after this thread stopped counting: the
  -- customer got the answer, so the order must exist.
  if status >= 200 and status < 300 then
    keep_number(body)
  end
  if stopped then
    return
  end
  local t = now()
  responses = responses + 1
  t_end = t
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if stop_on_sold_out and status == 409 and body and string.find(body, "sold_out", 1, true) then
    stopped = true
    if stop_dir and stop_dir ~= "" then
      local f = io.open(stop_dir .. "/" .. id, "w")
      if f then
        f:write(string.format("%.6f", t))
        f:close()
      end
    end
    wrk.thread:stop()
  end
end

-- done: one JSON line on stdout, prefixed so run.py can find it -----------------------
local function json_value(v)
  if type(v) == "table" then
    local parts = {}
    for k, val in pairs(v) do
      table.insert(parts, string.format("%q:%s", tostring(k), json_value(val)))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      return "null"
    end
    return string.format("%.6f", v)
  elseif type(v) == "boolean" then
    return tostring(v)
  elseif v == nil then
    return "null"
  end
  return string.format("%q", tostring(v))
end

local function write_numbers()
  local dir = threads[1] and threads[1]:get("stop_path")
  if dir == nil or dir == "" then
    return 0
  end
  local f = io.open(dir .. "/numbers.txt", "w")
  if not f then
    return 0
  end
  local count = 0
  for _, thread in ipairs(threads) do
    local kept = thread:get("numbers") or {}
    for _, number in ipairs(kept) do
      f:write(number, "\n")
      count = count + 1
    end
  end
  f:close()
  return count
end

function done(summary, latency, _requests)
  local out = {
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = summary.errors,
    latency_us = {
      min = latency.min,
      max = latency.max,
      mean = latency.mean,
      stdev = latency.stdev,
      p50 = latency:percentile(50),
      p75 = latency:percentile(75),
      p90 = latency:percentile(90),
      p95 = latency:percentile(95),
      p99 = latency:percentile(99),
      p999 = latency:percentile(99.9),
    },
    threads = {},
    numbers_written = write_numbers(),
  }
  for i, thread in ipairs(threads) do
    out.threads[tostring(i)] = {
      responses = thread:get("responses"),
      statuses = thread:get("statuses"),
      t_start = thread:get("t_start"),
      t_end = thread:get("t_end"),
      stopped = thread:get("stopped"),
    }
  end
  io.write("BENCH_JSON " .. json_value(out) .. "\n")
end
