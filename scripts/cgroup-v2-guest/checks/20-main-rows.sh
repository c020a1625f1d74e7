# The main run: every instance ready and done, with the cgroup memory (memory.current) and
# CPU (cpu.stat usage_usec) views filled in.
check main.exit "$MAIN" "isobench run cgroup-v2.toml exits 0" \
  '[ "$(cat "$MAIN/exit-code")" = 0 ] || { cat "$MAIN/stderr.txt"; exit 1; }'
check main.outcome "$MAIN" "meta.json outcome is complete" \
  '[ "$(meta_str "$MAIN" outcome)" = complete ] || meta_str "$MAIN" outcome'
# repetitions = 2: 2 rows at N = 1 and 20 at N = 10, per backend.
for b in process container; do
  check "main.rows.$b.n1" "$MAIN" "$b N=1: 2 rows, all ok" \
    'r=$(rows_ok "$MAIN" $b 1); [ "$r" = "2 2" ] || { echo "rows, ok: $r"; exit 1; }'
  check "main.rows.$b.n10" "$MAIN" "$b N=10: 20 rows, all ok" \
    'r=$(rows_ok "$MAIN" $b 10); [ "$r" = "20 20" ] || { echo "rows, ok: $r"; exit 1; }'
done
# touch-memory = 8: at least 8 MiB charged to each instance's own cgroup.
for run in "$MAIN" "$OCI"; do
  check "${run##*/}.cgroup-mem" "$run" "cgroup_mem_kib (memory.current) >= 8192 in every row" \
    'csv_col "$run/samples.csv" cgroup_mem_kib | awk "!(\$1 >= 8192) { print \"row \" NR \": \" \$1; bad = 1 } END { exit bad }"'
  check "${run##*/}.cgroup-cpu" "$run" "idle_cpu_ms_per_s (cpu.stat usage_usec) is a number in every row" \
    'csv_col "$run/samples.csv" idle_cpu_ms_per_s | awk "\$1 !~ /^[0-9.]+\$/ { print \"row \" NR \": \" \$1; bad = 1 } END { exit bad }"'
done
check main.cpu-stat "$MAIN" "cpu.stat usage_usec > 0 in every instance read back (the CPU view's source)" \
  'readback "$MAIN" "" cpu.stat | sed "s/^usage_usec \([0-9]*\);.*/\1/" | awk "!(\$1 > 0) { print; bad = 1 } END { exit bad }"'
