-- POST /v1/vehicles/{id}/readings: batches of 100 readings, spread over the
-- vehicles of the fleet.
local lib = dofile("bench/lib.lua")
lib.serve_fleet("POST", "/v1/vehicles/" .. lib.PLACEHOLDER .. "/readings", lib.batch_body())
