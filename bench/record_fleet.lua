-- POST /record spread over the vehicles of the fleet, one after another.
local lib = dofile("bench/lib.lua")
lib.serve_fleet("POST", "/record", string.format('{"vehicle_id": "%s", "engine_temperature": 90.5}', lib.PLACEHOLDER))
