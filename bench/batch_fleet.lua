-- POST /v1/vehicles/{id}/readings: batches of 100 readings, spread over the
-- vehicles of the fleet.
local lib = dofile("bench/lib.lua")
lib.serve_posts(lib.fleet(), function(i)
    return "/v1/vehicles/" .. lib.vehicle(i) .. "/readings"
end, lib.batch_body())
