-- POST /v1/vehicles/default/readings: batches of 100 readings of one vehicle.
local lib = dofile("bench/lib.lua")
lib.serve_formatted(1, function(_)
    return "/v1/vehicles/default/readings"
end, lib.batch_body())
