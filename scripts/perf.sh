#!/bin/sh
# Issue 12's figures from one run on this machine, side by side:
#   - start-up p50/p90/p99 of process and container at N = 1 and 10 (30 repetitions), with
#     the median of every phase column (scenarios/perf-startup.toml);
#   - 1000 processes and 1000 containers launched and all ready: wall time (all-ready), p50/
#     p90/p99, the harness's own RSS and CPU per instance, the wall breakdown, and the host's
#     mount table sampled during the batch (scenarios/perf-1000.toml);
#   - `cargo bench` of the kernel floor and each launcher beside it (the ratio lines).
# Usage (as root): scripts/perf.sh [OUT_DIR]   (default: /tmp/isobench-perf-<time>)
# ISOBENCH_PERF_NO_BENCH=1 leaves out the cargo bench part.
set -eu
cd "$(dirname "$0")/.."
out=${1:-/tmp/isobench-perf-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
cargo build --release --quiet
bin=target/x86_64-unknown-linux-gnu/release/isobench

# Median of each named column of samples.csv per (backend, n), rows with ok = true.
phases() {
    awk -F, -v cols="spawn_ms clone_ms cgroup_ms rootfs_ms setup_ms exec_ms agent_start_ms agent_ready_ms startup_ms" '
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; nc = split(cols, c, " "); next }
    $idx["ok"] == "true" {
        k = $idx["backend"] " n=" $idx["n"]; keys[k] = 1
        for (j = 1; j <= nc; j++) { v = $idx[c[j]]; if (v != "") { cnt[k, j]++; val[k, j, cnt[k, j]] = v } }
    }
    END {
        for (k in keys) {
            line = k
            for (j = 1; j <= nc; j++) {
                n = cnt[k, j]; if (n == 0) continue
                for (a = 1; a <= n; a++) s[a] = val[k, j, a] + 0
                for (a = 2; a <= n; a++) { x = s[a]; b = a - 1; while (b >= 1 && s[b] > x) { s[b + 1] = s[b]; b-- } s[b + 1] = x }
                line = line sprintf(" %s=%.2f", substr(c[j], 1, length(c[j]) - 3), s[int((n + 1) / 2)])
            }
            print "  phases p50 (ms): " line
        }
    }' "$1/samples.csv" | sort
}

echo "== start-up at N = 1 and 10 (scenarios/perf-startup.toml)"
"$bin" run -q scenarios/perf-startup.toml --out "$out/startup" --overwrite | sed -n '1,6p'
phases "$out/startup"

# The kernel frees the previous batches' cgroups and namespaces in the background for seconds
# after they are torn down: a pause keeps that work out of the 1000 batch.
sleep 20
echo "== 1000 ready (scenarios/perf-1000.toml); host mount table sampled every 50 ms"
before=$(wc -l < /proc/1/mountinfo)
"$bin" run -q scenarios/perf-1000.toml --out "$out/1000" --overwrite > "$out/1000.txt" &
run=$!
max=$before
while kill -0 "$run" 2>/dev/null; do
    n=$(wc -l < /proc/1/mountinfo)
    [ "$n" -gt "$max" ] && max=$n
    sleep 0.05
done
wait "$run"
sed -n '1,4p' "$out/1000.txt"
phases "$out/1000"
echo "  host mount table: $before lines before, at most $max during the run"
grep -E '"(harness_peak_rss_kib|harness_cpu_ms_per_instance|total_s|launch_s|teardown_s|waits_pct)"' "$out/1000/meta.json" | tr -s ' ' | sed 's/^/ /'

if [ "${ISOBENCH_PERF_NO_BENCH:-}" != 1 ]; then
    echo "== cargo bench: the kernel floor and each launcher beside it"
    cargo bench --quiet -- 'startup/' 2>&1 | grep -E 'time:|ratio|phases|skipped' | tee "$out/bench.txt"
fi
echo "results: $out"
