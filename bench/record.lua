-- POST /record with the seed's body: one vehicle (`default`).
local lib = dofile("bench/lib.lua")
lib.serve({ wrk.format("POST", "/record", lib.headers(nil), '{"engine_temperature": 90.5}') })
