-- POST /v1/vehicles/{id}/readings: batches of 100 readings, spread over the
-- 100,000 vehicles of the fleet.
local lib = dofile("bench/lib.lua")
lib.serve_formatted(lib.FLEET, function(i)
    return "/v1/vehicles/" .. lib.vehicle(i) .. "/readings"
end, lib.batch_body())
