-- Shared by the bench's wrk scripts (loaded with dofile, so wrk must run from
-- the repository's root, as bench/run does).
--
-- Every script builds its requests up front and hands them out from request(),
-- so the load generator does the same small amount of work per request in every
-- scenario, the floor's included. done() prints the one line bench/run reads.

local lib = {}

-- The size of the fleet scenarios' fleet, set by bench/run, which also has
-- examples/bench_fill.rs fill the same ids.
function lib.fleet()
    return assert(tonumber(os.getenv("FLEET")), "FLEET is not set: run the benchmark with bench/run")
end

function lib.vehicle(index)
    return string.format("1HGCM82633A%06d", index)
end

wrk.headers["Content-Type"] = "application/json"

-- With auth on, bench/run exports TOKENS (a file with one token per fleet
-- vehicle, in fleet order) and DEFAULT_TOKEN (the `default` vehicle's): each
-- request then carries its vehicle's own token, as a sensor's would.
local tokens = nil
local function token(index)
    if index == nil then
        return os.getenv("DEFAULT_TOKEN")
    end
    local path = os.getenv("TOKENS")
    if path == nil then
        return nil
    end
    if tokens == nil then
        tokens = {}
        for line in io.lines(path) do
            tokens[#tokens + 1] = line
        end
    end
    return assert(tokens[index + 1], "TOKENS has no token for vehicle " .. index)
end

-- The headers of a request about fleet vehicle `index` (nil: `default`):
-- always the JSON content type (wrk.format takes the table given instead of
-- wrk.headers, not merged with it, and the floor's Json extractor refuses a
-- body without it), and the vehicle's token when auth is on.
function lib.headers(index)
    local headers = { ["Content-Type"] = "application/json" }
    local t = token(index)
    if t ~= nil then
        headers["Authorization"] = "Bearer " .. t
    end
    return headers
end

-- Each thread gets a number (1, 2, …), so threads start at different vehicles.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
end

-- Where this thread starts in a list of `count`: threads spread over the fleet.
-- Called from init(), since thread_number is set after the script has run.
local function start(count)
    local number = thread_number or 1
    return ((number - 1) * 37501) % count
end

-- Hands out `make(i)` for i = 1..count in turn, each thread starting at its
-- own place in the list.
local function serve_each(count, make)
    local i = 0
    init = function(_)
        i = start(count)
    end
    request = function()
        i = i + 1
        if i > count then
            i = 1
        end
        return make(i)
    end
end

-- Serves `requests` (a list of ready-made HTTP requests) in turn.
function lib.serve(requests)
    serve_each(#requests, function(i)
        return requests[i]
    end)
end

-- 100 reading objects, one signal value each, the four built-in signals in turn.
function lib.batch_body()
    local signals = {
        { "engine_temperature", 85.0, 0.1 },
        { "vehicle_speed", 40.0, 0.5 },
        { "engine_rpm", 1800.0, 5.0 },
        { "cabin_temperature", 21.0, 0.05 },
    }
    local objects = {}
    for i = 0, 99 do
        local s = signals[i % 4 + 1]
        objects[#objects + 1] = string.format('{"%s":%.2f}', s[1], s[2] + i * s[3])
    end
    return "[" .. table.concat(objects, ",") .. "]"
end

-- POSTs `body` to `path(i)` for i = 0..count-1 in turn (with vehicle i's
-- token, when auth is on). The request is formatted once; each one sent only
-- joins its path (and token) to it, since a copy per vehicle of a large body
-- would take hundreds of megabytes.
function lib.serve_posts(count, path, body)
    local template = wrk.format("POST", "/", nil, body)
    local status_end = #"POST / HTTP/1.1\r\n"
    local rest = template:sub(status_end + 1)
    serve_each(count, function(i)
        local token = lib.headers(i - 1).Authorization
        local auth = token and ("Authorization: " .. token .. "\r\n") or ""
        return "POST " .. path(i - 1) .. " HTTP/1.1\r\n" .. auth .. rest
    end)
end

function done(summary, latency, _)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
        summary.requests,
        summary.duration,
        latency:percentile(50),
        latency:percentile(99),
        e.status,
        e.connect + e.read + e.write + e.timeout
    ))
end

return lib
