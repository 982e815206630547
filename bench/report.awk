# The tables bench/run prints, from its three files (tab-separated):
#   results: key scenario store vehicles unit, then Tributary's and the floor's
#            requests duration_us p50_us p99_us non2xx socket_errors, then the
#            floor's kind (bare or redis); one line per round
#            (key: <store>.<record|collect|batch|batchgz>.<one|fleet|million>[.auth|.tokens|.log];
#            store: memory or redis/<persistence>; unit: req or readings)
#   memory:  store idle_kb filled_kb after_kb redis_kb used_before used_after fill_seconds
#            aof_rewrites_after_fill aof_rewrites_after_runs vehicles
#   seed:    workers persistence kind (record or collect), then the seed's
#            requests duration_us p50_us p99_us non2xx socket_errors
# Variables: fleet, readings, seed_workers. Exits 1 when a goal is missed.
# A store without goals here (a row another block of bench/run adds) is
# printed with its ratios and no goal.

BEGIN {
    FS = "\t"
    # The goals.
    min_ratio["bare", "memory"] = 0.85  # /record and /collect, to the bare floor
    min_ratio["redis", "redis"] = 0.85  # /record and /collect on Redis, to the Redis floor
    max_p99_ratio = 1.5                 # p99, to the same floor's p99
    min_batch["memory"] = 1000000; min_batch["redis"] = 500000  # readings/s, batches of 100
    min_spread = 0.80                   # 100,000 vehicles to one; 1,000,000 to 100,000
    min_auth = 0.90                     # auth on, to the same row auth off
    min_log = 0.90                      # access log on, to the same row with it off
    max_rss_mb[100000] = 300            # memory store, fleet filled
    max_rss_mb[1000000] = 2000
    min_seed_one = 50                   # Tributary on Redis, to the seed with one worker
    min_seed_best = 20                  # ... to the seed's best
    min_seed_p99 = 10                   # the seed's p99, to Tributary's
}

function commas(n,    s, out) {
    s = sprintf("%.0f", n)
    out = ""
    while (length(s) > 3) {
        out = "," substr(s, length(s) - 2) out
        s = substr(s, 1, length(s) - 3)
    }
    return s out
}

function mb(bytes) { return sprintf("%.1f MB", bytes / 1e6) }

# The median of the values list[key, 1..count].
function median(list, key, count,    i, j, v, sorted) {
    for (i = 1; i <= count; i++) sorted[i] = list[key, i]
    for (i = 2; i <= count; i++) {
        v = sorted[i]
        for (j = i - 1; j >= 1 && sorted[j] > v; j--) sorted[j + 1] = sorted[j]
        sorted[j + 1] = v
    }
    if (count % 2) return sorted[(count + 1) / 2]
    return (sorted[count / 2] + sorted[count / 2 + 1]) / 2
}

# One line per round; a key measured in several rounds is reported by the
# median of each figure.
FILENAME == ARGV[1] {
    if (!($1 in rounds)) {
        n++
        key[n] = $1; scenario[n] = $2; store[n] = $3; vehicles[n] = $4; unit[n] = $5
        errors[$1] = ""
    }
    r = ++rounds[$1]
    per = ($5 == "readings") ? 100 : 1
    # Only 2xx answers count.
    rate[$1, r] = per * ($6 - $10) / ($7 / 1e6); p50[$1, r] = $8 / 1000; p99[$1, r] = $9 / 1000
    if ($10 > 0) errors[$1] = errors[$1] ", " $10 " non-2xx"
    if ($11 > 0) errors[$1] = errors[$1] ", " $11 " socket errors"
    floor_rate[$1, r] = per * ($12 - $16) / ($13 / 1e6); floor_p99[$1, r] = $15 / 1000
    if ($16 > 0 || $17 > 0) errors[$1] = errors[$1] ", floor: " $16 " non-2xx, " $17 " socket errors"
    floor_kind[$1] = ($18 == "") ? "bare" : $18
    ratio[$1, r] = rate[$1, r] / floor_rate[$1, r]
    p99x[$1, r] = p99[$1, r] / floor_p99[$1, r]
    next
}

FILENAME == ARGV[2] {
    m++
    mem_store[m] = $1; idle_kb[m] = $2; filled_kb[m] = $3; after_kb[m] = $4
    redis_kb[m] = $5; used_before[m] = $6; used_after[m] = $7; fill_s[m] = $8
    rewrites_filled[m] = $9; rewrites_after[m] = $10
    mem_vehicles[m] = ($11 == "") ? fleet : $11
    next
}

FILENAME == ARGV[3] {
    q++
    seed_workers_of[q] = $1; seed_persistence[q] = $2; seed_kind[q] = $3
    seed_rate[q] = ($4 - $8) / ($5 / 1e6); seed_p50[q] = $6 / 1000; seed_p99[q] = $7 / 1000
    seed_errors[q] = ""
    if ($8 > 0) seed_errors[q] = seed_errors[q] ", " $8 " non-2xx"
    if ($9 > 0) seed_errors[q] = seed_errors[q] ", " $9 " socket errors"
    if (!(($2, $3) in seed_best) || seed_rate[q] > seed_best[$2, $3]) seed_best[$2, $3] = seed_rate[q]
    next
}

END {
    for (i = 1; i <= n; i++) {
        k = key[i]; c = rounds[k]
        m_rate[k] = median(rate, k, c); m_p50[k] = median(p50, k, c); m_p99[k] = median(p99, k, c)
        m_floor[k] = median(floor_rate, k, c); m_floor_p99[k] = median(floor_p99, k, c)
        m_ratio[k] = median(ratio, k, c); m_p99x[k] = median(p99x, k, c)
    }
    failed = 0
    row = "%-43s %-10s %9s %19s %7s %7s %-5s %19s %7s %5s %5s %5s %6s  %-44s %s\n"
    printf row, "scenario", "store", "vehicles", "throughput", "p50", "p99", "floor", "floor throughput", "fl. p99", "ratio", "p99 x", "vs <", "vs off", "goal", "result"
    for (i = 1; i <= n; i++) {
        k = key[i]
        split(k, part, ".")
        s = store[i]; kind = part[2]
        split(s, sp, "/"); base = sp[1]
        f = floor_kind[k]
        reasons = ""
        goal = ""
        if (kind == "batch" || kind == "batchgz") {
            if (kind == "batch" && base in min_batch) {
                goal = sprintf(">=%s readings/s", commas(min_batch[base]))
                if (m_rate[k] < min_batch[base]) reasons = reasons ", readings/s"
            }
        } else if ((f, base) in min_ratio) {
            goal = sprintf(">=%.2f of %s, p99 <=%.1fx", min_ratio[f, base], (f == "redis") ? "Redis floor" : "floor", max_p99_ratio)
            if (m_ratio[k] < min_ratio[f, base]) reasons = reasons ", ratio"
            if (m_p99x[k] > max_p99_ratio) reasons = reasons ", p99"
        }
        # Each run to its own floor, so a change in the machine's load cancels
        # out: the fleet's ratio over one vehicle's, a million's over the fleet's.
        spread_text = ""
        suffix = (part[4] == "") ? "" : "." part[4]
        fewer = ""
        if (part[3] == "fleet") { fewer = s "." kind ".one" suffix; fewer_name = "1" }
        if (part[3] == "million") { fewer = s "." kind ".fleet" suffix; fewer_name = "100k" }
        if (fewer != "" && fewer in m_ratio) {
            spread = m_ratio[k] / m_ratio[fewer]
            spread_text = sprintf("%.2f", spread)
            goal = goal sprintf(", >=%.2f of %s", min_spread, fewer_name)
            if (spread < min_spread) reasons = reasons ", vs " fewer_name
        }
        off_text = ""
        off = part[1] "." part[2] "." part[3]
        if (part[4] == "auth" && off in m_rate) {
            # Throughput with every request's token checked, over the same row without auth.
            vs_off = m_rate[k] / m_rate[off]
            off_text = sprintf("%.2f", vs_off)
            goal = goal sprintf(", >=%.2f of off", min_auth)
            if (vs_off < min_auth) reasons = reasons ", vs off"
            # The same requests (tokens sent) to a server with auth off: what
            # checking them costs the server alone.
            tokens = off ".tokens"
            if (tokens in m_rate) off_text = off_text sprintf(" (%.2f of tok.)", m_rate[k] / m_rate[tokens])
        }
        if (part[4] == "tokens" && off in m_rate) off_text = sprintf("%.2f", m_rate[k] / m_rate[off])
        if (part[4] == "log" && off in m_rate) {
            # Throughput with a line per request, over the same row without.
            vs_off = m_rate[k] / m_rate[off]
            off_text = sprintf("%.2f", vs_off)
            goal = goal sprintf(", >=%.2f of off", min_log)
            if (vs_off < min_log) reasons = reasons ", vs off"
        }
        sub(/^, /, "", goal)
        if (goal == "") goal = "-"
        reasons = reasons errors[k]
        result = (reasons == "") ? "PASS" : "FAIL (" substr(reasons, 3) ")"
        if (reasons != "") failed = 1
        if (goal == "-" && reasons == "") result = "-"
        per = (unit[i] == "readings") ? " rd/s" : " req/s"
        printf row, scenario[i], s, commas(vehicles[i]), commas(m_rate[k]) per,
            sprintf("%.2fms", m_p50[k]), sprintf("%.2fms", m_p99[k]), f, commas(m_floor[k]) per,
            sprintf("%.2fms", m_floor_p99[k]), sprintf("%.2f", m_ratio[k]), sprintf("%.2f", m_p99x[k]),
            spread_text, off_text, goal, result
    }
    print ""
    print "rd/s: readings per second (batches of 100 readings, one signal value each)."
    print "store: memory, or redis/<persistence>: aof (appendfsync always, as deployed), everysec, none."
    print "floor: what the row is compared with (examples/bench_floor.rs), measured right before it"
    print "  with the same wrk script. bare: axum parsing the same bodies and answering a constant"
    print "  (for /collect, an object of /collect's shape). redis: the Redis floor, the same axum"
    print "  service on the same redis-server, doing LPUSH + LTRIM 0 9 in one MULTI per /record and"
    print "  one LRANGE 0 9 per /collect over one multiplexed connection."
    print "ratio: throughput over the floor's; p99 x: p99 over the floor's p99."
    print "vs <: the ratio with 100,000 vehicles over the ratio with one vehicle; with 1,000,000,"
    print "  over the ratio with 100,000."
    print "(auth): auth required, every request with its vehicle's own token (one per vehicle);"
    print "  vs off: its throughput over the same row's with auth off, measured side by side"
    print "  (a server for each; every round runs one, then the other)."
    print "(tokens sent): auth off, but every request still carries its token (AUTH=tokens): the"
    print "  tokens' cost to wrk and the wire alone; vs off as for (auth), and an (auth) row's"
    print "  \"of tok.\" is its throughput over this row's: the cost of checking tokens, alone."
    print "(access log): the access log on, a line per request to a file; vs off: its throughput"
    print "  over the same row's with the access log off (every other row), side by side as for (auth)."
    print "Only 2xx answers count; any other answer or socket error fails the row."
    if (rounds[key[1]] > 1)
        printf "Each figure is the median over %d rounds (each a floor run, then Tributary's).\n", rounds[key[1]]

    if (q > 0) {
        print ""
        print "the seed (bench/seed: Flask 3, redis-py 5, gunicorn 21 sync workers, loguru; a Redis connection"
        print "per request), on its own fresh redis-server, beside Tributary's one-vehicle rows on Redis"
        srow = "%-14s %-10s %7s %15s %9s %9s %15s %9s %9s %12s  %-32s %s\n"
        printf srow, "scenario", "store", "workers", "seed", "seed p50", "seed p99", "Tributary", "Trib. p99", "x seed", "p99 / Trib.", "goal", "result"
        for (i = 1; i <= q; i++) {
            k = "redis/" seed_persistence[i] "." seed_kind[i] ".one"
            name = (seed_kind[i] == "record") ? "POST /record" : "GET /collect"
            reasons = ""
            times_text = "-"; p99_text = "-"; trib = "-"; trib_p99 = "-"
            goal = sprintf("p99 >=%dx Trib.'s", min_seed_p99)
            if (seed_workers_of[i] == 1) goal = sprintf(">=%dx seed, ", min_seed_one) goal
            best = (seed_rate[i] == seed_best[seed_persistence[i], seed_kind[i]])
            if (best) goal = sprintf(">=%dx best, ", min_seed_best) goal
            if (seed_rate[i] <= 0 || seed_p99[i] <= 0) {
                reasons = ", no answer from the seed"
            } else if (k in m_rate && m_rate[k] > 0 && m_p99[k] > 0) {
                times = m_rate[k] / seed_rate[i]
                p99_over = seed_p99[i] / m_p99[k]
                times_text = sprintf("%.1f", times); p99_text = sprintf("%.1f", p99_over)
                trib = commas(m_rate[k]) " req/s"; trib_p99 = sprintf("%.2fms", m_p99[k])
                if (seed_workers_of[i] == 1 && times < min_seed_one) reasons = reasons ", x seed"
                if (best && times < min_seed_best) reasons = reasons ", x best"
                if (p99_over < min_seed_p99) reasons = reasons ", p99"
            } else {
                reasons = ", no Tributary row " k
            }
            reasons = reasons seed_errors[i]
            result = (reasons == "") ? "PASS" : "FAIL (" substr(reasons, 3) ")"
            if (reasons != "") failed = 1
            printf srow, name, "redis/" seed_persistence[i], seed_workers_of[i], commas(seed_rate[i]) " req/s",
                sprintf("%.2fms", seed_p50[i]), sprintf("%.2fms", seed_p99[i]), trib, trib_p99,
                times_text, p99_text, goal, result
        }
        printf "workers: gunicorn sync workers: 1, as the seed's Dockerfile ran it, and 2 x cores + 1 (%d here).\n", seed_workers
        print "x seed: Tributary's throughput over the seed's; p99 / Trib.: the seed's p99 over Tributary's."
        print "best: the seed's faster row of that scenario. The seed's non-2xx answers or socket errors fail its row."
    }

    if (m > 0) {
        print ""
        printf "memory, vehicles x 4 signals x %d readings (MB = 10^6 bytes)\n", readings
        mrow = "%-15s %9s %10s %11s %18s %15s %10s %15s %7s  %-20s %s\n"
        printf mrow, "store", "vehicles", "RSS idle", "RSS filled", "per vehicle", "RSS after runs", "redis RSS", "redis used_mem", "fill", "goal", "result"
        for (i = 1; i <= m; i++) {
            v = mem_vehicles[i]
            filled = filled_kb[i] * 1024
            per_vehicle = sprintf("%.2f KB", (filled_kb[i] - idle_kb[i]) * 1024 / v / 1000)
            redis_rss = "-"; redis_used = "-"
            if (index(mem_store[i], "redis") == 1) {
                redis_rss = mb(redis_kb[i] * 1024)
                redis_used = mb(used_after[i])
                per_vehicle = per_vehicle sprintf(" + %.2f KB", (used_after[i] - used_before[i]) / v / 1000)
            }
            goal = "-"; result = "-"
            if (mem_store[i] == "memory" && v in max_rss_mb) {
                goal = sprintf("RSS filled <=%s MB", commas(max_rss_mb[v]))
                result = (filled <= max_rss_mb[v] * 1e6) ? "PASS" : "FAIL"
                if (result == "FAIL") failed = 1
            }
            printf mrow, mem_store[i], commas(v), mb(idle_kb[i] * 1024), mb(filled), per_vehicle,
                mb(after_kb[i] * 1024), redis_rss, redis_used, (fill_s[i] == "-" ? "-" : fill_s[i] " s"), goal, result
        }
        print "RSS: Tributary's resident memory (VmRSS): idle after start, after the fill, after the runs."
        print "per vehicle: Tributary's RSS growth over the fill (+ Redis's used_memory growth, on Redis)."
        print "redis used_mem: Redis's used_memory after the fill (before the Redis floor's own lists)."
        print "fill: bench_fill's time; on Redis one fill, through the first server, serves every server (-)."
        for (i = 1; i <= m; i++)
            if (index(mem_store[i], "redis") == 1 && rewrites_after[i] > 0)
                printf "%s rewrote its AOF %d times during the fill and %d times during the %s-vehicle runs.\n",
                    mem_store[i], rewrites_filled[i], rewrites_after[i] - rewrites_filled[i], commas(mem_vehicles[i])
    }
    exit failed
}
