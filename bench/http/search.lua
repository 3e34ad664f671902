-- wrk script for bench/http/run.sh: POST /collections/demo/search with single
-- random unit queries of dimension 128 (k = 10, dot), rotated per request
-- from a pool built once, so the server sees varied input. Counts every
-- response status and prints one line "result-json {...}" for the runner.
--
-- Usage: wrk -t1 -c64 -d20s --latency -s bench/http/search.lua http://127.0.0.1:PORT
-- Environment: SEARCH_COLLECTION (default demo), SEARCH_DIMENSION (128),
-- SEARCH_POOL (256 queries), SEARCH_SEED (42).

local collection = os.getenv("SEARCH_COLLECTION") or "demo"
local dimension = tonumber(os.getenv("SEARCH_DIMENSION") or "128")
local pool_size = tonumber(os.getenv("SEARCH_POOL") or "256")
local seed = tonumber(os.getenv("SEARCH_SEED") or "42")

local threads = {}
local requests = {}
local next_request = 0
statuses = {}

-- A normally distributed component (Box-Muller), so the normalised vector is
-- uniform on the sphere.
local function gaussian()
  local u = 1 - math.random()
  return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * math.random())
end

local function unit_query()
  local values, norm = {}, 0
  for i = 1, dimension do
    values[i] = gaussian()
    norm = norm + values[i] * values[i]
  end
  norm = math.sqrt(norm)
  for i = 1, dimension do
    values[i] = string.format("%.7g", values[i] / norm)
  end
  return '{"query":[' .. table.concat(values, ",") .. '],"k":10,"metric":"dot"}'
end

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- Each thread builds the same pool, then starts at its own offset.
  math.randomseed(seed)
  local path = "/collections/" .. collection .. "/search"
  local headers = { ["Content-Type"] = "application/json" }
  for i = 1, pool_size do
    requests[i] = wrk.format("POST", path, headers, unit_query())
  end
  next_request = (thread_id or 0) * 17
end

function request()
  next_request = next_request % pool_size + 1
  return requests[next_request]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests_done)
  local counts = {}
  local non2xx = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
      if tonumber(status) < 200 or tonumber(status) > 299 then
        non2xx = non2xx + count
      end
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'result-json {"requests":%d,"duration_s":%.3f,"requests_per_s":%.1f,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},"non2xx":%d,"statuses":{%s},' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status, non2xx, table.concat(parts, ","),
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3))
end
