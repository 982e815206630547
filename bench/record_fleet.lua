-- POST /record spread over the vehicles of the fleet, one after another.
local lib = dofile("bench/lib.lua")
local requests = {}
for i = 0, lib.fleet() - 1 do
    local body = string.format('{"vehicle_id": "%s", "engine_temperature": 90.5}', lib.vehicle(i))
    requests[#requests + 1] = wrk.format("POST", "/record", lib.headers(i), body)
end
lib.serve(requests)
