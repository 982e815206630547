-- Shared by the bench's wrk scripts (loaded with dofile, so wrk must run from
-- the repository's root, as bench/run does).
--
-- A one-vehicle script builds its one request up front; a fleet script makes
-- each request from a template and the vehicle's id when it is sent
-- (lib.serve_fleet), a few concatenations. Not a list built up front: wrk
-- runs each thread's script before starting the next thread, and its clock
-- starts only once all threads run, so a list that takes seconds to build
-- (100,000 requests took about one, 1,000,000 about twelve) let the first
-- thread send unclocked requests: 1,000,000-vehicle runs reported 400,000
-- requests/s, and the 100,000-vehicle rows of earlier runs were inflated too.
-- done() prints the one line bench/run reads.

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
-- vehicle, in fleet order, all of one length) and DEFAULT_TOKEN (the `default`
-- vehicle's): each request then carries its vehicle's own token, as a
-- sensor's would.
--
-- What the tokens cost wrk is kept to a string slice a request. The file is
-- held as one string, read on first use (about 20 ms for 100,000 tokens, on
-- the clock: reading it before would let the first thread send unclocked
-- requests while the second reads, see above), and a token is found by its
-- index, not kept in a table of 100,000 strings: that table took 0.14 s a
-- thread to build and, worse, made every later request cost wrk about 3 us
-- more, because LuaJIT's collector lets the heap grow to twice its live size
-- before a cycle, so each request's strings landed in cold memory. With the
-- one string, the pause is set so that a cycle comes every 256 KiB or so of
-- new strings; marking one string is cheap.
local tokens_path = os.getenv("TOKENS")
local tokens, token_line = nil, nil
local function token(index)
    if index == nil then
        return os.getenv("DEFAULT_TOKEN")
    end
    if tokens_path == nil then
        return nil
    end
    if tokens == nil then
        local file = assert(io.open(tokens_path, "rb"))
        tokens = file:read("*a")
        file:close()
        token_line = assert(tokens:find("\n", 1, true), "TOKENS holds no line")
        if #tokens % token_line ~= 0 then
            error("TOKENS' tokens are not all of one length: bench/run mints them so")
        end
        collectgarbage("setpause", 100 + math.ceil(100 * 256 * 1024 / #tokens))
    end
    local first = index * token_line + 1
    if first > #tokens then
        error("TOKENS has no token for vehicle " .. index)
    end
    -- Every token sent ends where its line does (one byte compared), so a
    -- line of another length fails the run rather than sending a cut token.
    if tokens:byte(first + token_line - 1) ~= 10 then
        error("TOKENS' line " .. (index + 1) .. " is not " .. (token_line - 1) .. " characters long: bench/run mints them so")
    end
    return tokens:sub(first, first + token_line - 2)
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

-- Stands for a vehicle id in lib.serve_fleet's path and body: as long as one
-- (17 characters), so the template's Content-Length holds for every vehicle.
local PLACEHOLDER = "{{vehicle-id-17}}"
assert(#PLACEHOLDER == #lib.vehicle(0))

-- `text` split around its one PLACEHOLDER, or `text` and nil without one.
local function split(text)
    local first, last = text:find(PLACEHOLDER, 1, true)
    if first == nil then
        return text, nil
    end
    return text:sub(1, first - 1), text:sub(last + 1)
end

-- Serves `method` `path` with `body` (either may hold lib.PLACEHOLDER, see
-- above) for each vehicle of the fleet in turn, with the vehicle's id in place
-- of the placeholder and its token when auth is on; each request is made when
-- it is sent.
function lib.serve_fleet(method, path, body)
    local template = wrk.format(method, path, { ["Content-Type"] = "application/json" }, body)
    local line_end = template:find("\r\n", 1, true) + 1
    local line_before, line_after = split(template:sub(1, line_end))
    local rest_before, rest_after = split(template:sub(line_end + 1))
    serve_each(lib.fleet(), function(i)
        local id = lib.vehicle(i - 1)
        local t = token(i - 1)
        local line = line_after and (line_before .. id .. line_after) or line_before
        local rest = rest_after and (rest_before .. id .. rest_after) or rest_before
        if t == nil then
            return line .. rest
        end
        return line .. "Authorization: Bearer " .. t .. "\r\n" .. rest
    end)
end
lib.PLACEHOLDER = PLACEHOLDER

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
