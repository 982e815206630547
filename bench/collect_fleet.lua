-- GET /collect?vehicle_id=… spread over the vehicles of the fleet.
local lib = dofile("bench/lib.lua")
local requests = {}
for i = 0, lib.fleet() - 1 do
    requests[#requests + 1] = wrk.format("GET", "/collect?vehicle_id=" .. lib.vehicle(i), lib.headers(i))
end
lib.serve(requests)
