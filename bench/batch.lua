-- POST /v1/vehicles/default/readings: batches of 100 readings of one vehicle.
local lib = dofile("bench/lib.lua")
lib.serve({ wrk.format("POST", "/v1/vehicles/default/readings", lib.headers(nil), lib.batch_body()) })
