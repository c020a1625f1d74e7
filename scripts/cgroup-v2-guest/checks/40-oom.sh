# touch-memory 48 MiB under memory.max = 16 MiB: the kernel kills the agent in its cgroup,
# and the row's error names the OOM kill and the limit (from memory.events on v2).
check oom.exit "$OOM" "isobench run cgroup-v2-oom.toml exits 1 (a measured failure)" \
  '[ "$(cat "$OOM/exit-code")" = 1 ] || { cat "$OOM/stderr.txt"; exit 1; }'
csv_col "$OOM/samples.csv" ok > /tmp/c.oomok
csv_col "$OOM/samples.csv" error > /tmp/c.oomerr
check oom.rows "$OOM" "2 rows, none ok, each with an error" \
  '[ "$(grep -c "^false\$" /tmp/c.oomok)" = 2 ] && [ "$(wc -l < /tmp/c.oomok)" = 2 ] &&
   ! grep -q "^\$" /tmp/c.oomerr || { cat /tmp/c.oomok /tmp/c.oomerr; exit 1; }'
check oom.memory.max "$OOM" "the instances ran under memory.max = 16777216" \
  'readback "$OOM" container memory.max | every_line_is 16777216'
check oom.kernel "$OOM" "the kernel OOM-killed in the run's own cgroups (memcg limit, not the guest's RAM)" \
  'grep -q "constraint=CONSTRAINT_MEMCG.*oom_memcg=/isobench/$(meta_str "$OOM" run_id)/" "$OOM/dmesg-oom.txt" || { cat "$OOM/dmesg-oom.txt"; exit 1; }'
check oom.error "$OOM" "both rows say oom-killed at memory limit 16 MiB (memory.events)" \
  '[ "$(grep -c "^oom-killed at memory limit 16 MiB" /tmp/c.oomerr)" = 2 ] || { cat /tmp/c.oomerr; exit 1; }'
