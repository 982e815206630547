-- POST /v1/vehicles/default/readings: the batches of 100 readings of
-- batch.lua, gzip-compressed (Content-Encoding: gzip), as a car on a metered
-- cellular link sends them. bench/run writes the compressed body to the file
-- named by BATCH_GZIP.
local lib = dofile("bench/lib.lua")
local path = assert(os.getenv("BATCH_GZIP"), "BATCH_GZIP is not set: run the benchmark with bench/run")
local file = assert(io.open(path, "rb"))
local body = file:read("*a")
file:close()
local headers = lib.headers(nil)
headers["Content-Encoding"] = "gzip"
lib.serve({ wrk.format("POST", "/v1/vehicles/default/readings", headers, body) })
