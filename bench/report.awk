# The tables bench/run prints, from its two files (tab-separated):
#   results: key scenario store vehicles unit, then Tributary's and the floor's
#            requests duration_us p50_us p99_us non2xx socket_errors; one line per round
#            (key: <store>.<record|collect|batch>.<one|fleet>[.auth]; unit: req or readings)
#   memory:  store idle_kb filled_kb after_kb redis_kb used_before used_after fill_seconds
#            aof_rewrites_after_fill aof_rewrites_after_runs
# Variables: fleet, readings. Exits 1 when a goal is missed.

BEGIN {
    FS = "\t"
    # The goals.
    min_ratio["memory"] = 0.85; min_ratio["redis"] = 0.70       # /record and /collect, to the floor
    max_p99_ratio = 1.5                                         # p99, to the floor's p99
    min_batch["memory"] = 1000000; min_batch["redis"] = 500000  # readings/s, batches of 100
    min_spread = 0.80                                           # 100,000 vehicles, to one
    min_auth = 0.90                                             # auth on, to the same row auth off
    max_rss_mb = 300                                            # memory store, fleet filled
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
    ratio[$1, r] = rate[$1, r] / floor_rate[$1, r]
    p99x[$1, r] = p99[$1, r] / floor_p99[$1, r]
    next
}

{
    m++
    mem_store[m] = $1; idle_kb[m] = $2; filled_kb[m] = $3; after_kb[m] = $4
    redis_kb[m] = $5; used_before[m] = $6; used_after[m] = $7; fill_s[m] = $8
    rewrites_filled[m] = $9; rewrites_after[m] = $10
}

END {
    for (i = 1; i <= n; i++) {
        k = key[i]; c = rounds[k]
        m_rate[k] = median(rate, k, c); m_p50[k] = median(p50, k, c); m_p99[k] = median(p99, k, c)
        m_floor[k] = median(floor_rate, k, c); m_floor_p99[k] = median(floor_p99, k, c)
        m_ratio[k] = median(ratio, k, c); m_p99x[k] = median(p99x, k, c)
    }
    failed = 0
    row = "%-43s %-6s %8s %19s %7s %7s %19s %7s %5s %5s %5s %6s  %-40s %s\n"
    printf row, "scenario", "store", "vehicles", "throughput", "p50", "p99", "floor", "fl. p99", "ratio", "p99 x", "vs 1", "vs off", "goal", "result"
    for (i = 1; i <= n; i++) {
        k = key[i]
        split(k, part, ".")
        s = store[i]; kind = part[2]
        reasons = ""
        if (kind == "batch") {
            goal = sprintf(">=%s readings/s", commas(min_batch[s]))
            if (m_rate[k] < min_batch[s]) reasons = reasons ", readings/s"
        } else {
            goal = sprintf(">=%.2f of floor, p99 <=%.1fx", min_ratio[s], max_p99_ratio)
            if (m_ratio[k] < min_ratio[s]) reasons = reasons ", ratio"
            if (m_p99x[k] > max_p99_ratio) reasons = reasons ", p99"
        }
        spread_text = ""
        suffix = (part[4] == "") ? "" : "." part[4]
        one = s "." kind ".one" suffix
        if (part[3] == "fleet" && one in m_ratio) {
            # Each run to its own floor, so a change in the machine's load cancels out.
            spread = m_ratio[k] / m_ratio[one]
            spread_text = sprintf("%.2f", spread)
            goal = goal sprintf(", >=%.2f of 1", min_spread)
            if (spread < min_spread) reasons = reasons ", vs 1"
        }
        off_text = ""
        off = part[1] "." part[2] "." part[3]
        if (part[4] == "auth" && off in m_rate) {
            # Throughput with every request's token checked, over the same row without auth.
            vs_off = m_rate[k] / m_rate[off]
            off_text = sprintf("%.2f", vs_off)
            goal = goal sprintf(", >=%.2f of off", min_auth)
            if (vs_off < min_auth) reasons = reasons ", vs off"
        }
        reasons = reasons errors[k]
        result = (reasons == "") ? "PASS" : "FAIL (" substr(reasons, 3) ")"
        if (reasons != "") failed = 1
        per = (unit[i] == "readings") ? " rd/s" : " req/s"
        printf row, scenario[i], s, commas(vehicles[i]), commas(m_rate[k]) per,
            sprintf("%.2fms", m_p50[k]), sprintf("%.2fms", m_p99[k]), commas(m_floor[k]) per,
            sprintf("%.2fms", m_floor_p99[k]), sprintf("%.2f", m_ratio[k]), sprintf("%.2f", m_p99x[k]),
            spread_text, off_text, goal, result
    }
    print ""
    print "rd/s: readings per second (batches of 100 readings, one signal value each)."
    print "floor, fl. p99: the bare axum floor (examples/bench_floor.rs), measured right before the row"
    print "  with the same wrk script: POST with the same bodies (parsed, a constant answer), and for"
    print "  /collect a GET answering a constant object of /collect's shape."
    print "ratio: throughput over the floor's; p99 x: p99 over the floor's p99."
    print "vs 1: the ratio with 100,000 vehicles over the ratio with one vehicle."
    print "(auth): auth required, every request with its vehicle's own token (one per vehicle);"
    print "  vs off: its throughput over the same row's with auth off, in the same run."
    print "Only 2xx answers count; any other answer or socket error fails the row."
    if (rounds[key[1]] > 1)
        printf "Each figure is the median over %d rounds (each a floor run, then Tributary's).\n", rounds[key[1]]

    if (m > 0) {
        print ""
        printf "memory, %s vehicles x 4 signals x %d readings (MB = 10^6 bytes)\n", commas(fleet), readings
        mrow = "%-7s %10s %11s %18s %15s %10s %15s %7s  %-20s %s\n"
        printf mrow, "store", "RSS idle", "RSS filled", "per vehicle", "RSS after runs", "redis RSS", "redis used_mem", "fill", "goal", "result"
        for (i = 1; i <= m; i++) {
            filled = filled_kb[i] * 1024
            per_vehicle = sprintf("%.2f KB", (filled_kb[i] - idle_kb[i]) * 1024 / fleet / 1000)
            redis_rss = "-"; redis_used = "-"
            if (index(mem_store[i], "redis") == 1) {
                redis_rss = mb(redis_kb[i] * 1024)
                redis_used = mb(used_after[i])
                per_vehicle = per_vehicle sprintf(" + %.2f KB", (used_after[i] - used_before[i]) / fleet / 1000)
            }
            goal = "-"; result = "-"
            if (mem_store[i] == "memory") {
                goal = sprintf("RSS filled <=%d MB", max_rss_mb)
                result = (filled <= max_rss_mb * 1e6) ? "PASS" : "FAIL"
                if (result == "FAIL") failed = 1
            }
            printf mrow, mem_store[i], mb(idle_kb[i] * 1024), mb(filled), per_vehicle,
                mb(after_kb[i] * 1024), redis_rss, redis_used, fill_s[i] " s", goal, result
        }
        print "RSS: Tributary's resident memory (VmRSS): idle after start, after the fill, after the runs."
        print "per vehicle: Tributary's RSS growth over the fill (+ Redis's used_memory growth, on Redis)."
        for (i = 1; i <= m; i++)
            if (index(mem_store[i], "redis") == 1 && rewrites_after[i] > 0)
                printf "redis rewrote its AOF %d times during the fill and %d times during the %s-vehicle runs.\n",
                    rewrites_filled[i], rewrites_after[i] - rewrites_filled[i], commas(fleet)
    }
    exit failed
}
