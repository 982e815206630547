-- GET /collect of one vehicle (`default`), as the seed's apps ask.
local lib = dofile("bench/lib.lua")
lib.serve({ wrk.format("GET", "/collect", lib.headers(nil)) })
