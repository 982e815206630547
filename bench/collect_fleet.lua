-- GET /collect?vehicle_id=… spread over the vehicles of the fleet.
local lib = dofile("bench/lib.lua")
lib.serve_fleet("GET", "/collect?vehicle_id=" .. lib.PLACEHOLDER, nil)
