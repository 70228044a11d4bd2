-- wrk script: random point lookups against the fission API.
--
--   wrk -t2 -c16 -d20s --latency -s ops/bench/api_lookup.lua http://127.0.0.1:8080 -- \
--       TOKEN TENANT ROUTE MEMBERS [AS_OF]
--
-- ROUTE: members | distributors | groups | orders. Ids are drawn uniformly
-- from the generator's id space (m000000 .. m<MEMBERS-1>, and for orders and
-- groups the generator's sequence numbers), so most lookups hit a row and
-- some miss (404), as real traffic does. AS_OF (RFC 3339) adds ?as_of=.
local token, tenant, route, members, as_of
local counts = {}

function init(args)
  token = args[1] or "bench-token-0123456789"
  tenant = args[2] or "default"
  route = args[3] or "members"
  members = tonumber(args[4] or "1000000")
  as_of = args[5]
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local id
  if route == "orders" then
    id = string.format("o%08d", math.random(1, members * 2))
  elseif route == "groups" then
    id = string.format("g%08d", math.random(1, members * 2))
  else
    id = string.format("m%06d", math.random(0, members - 1))
  end
  local path = "/v1/" .. tenant .. "/" .. route .. "/" .. id
  local q = {}
  if as_of then q[#q + 1] = "as_of=" .. as_of end
  if route == "distributors" then q[#q + 1] = "limit=20" end
  if #q > 0 then path = path .. "?" .. table.concat(q, "&") end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

function response(status)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  (%d requests, %.0f/s)\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, summary.requests, summary.requests / (summary.duration / 1e6)))
end
