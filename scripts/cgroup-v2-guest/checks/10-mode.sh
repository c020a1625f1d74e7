# The guest is pure cgroup v2, and every run saw it so (meta.json).
check mode.no-v1 "$OUT" "no cgroup v1 hierarchy is mounted" \
  '! grep " - cgroup " /proc/self/mountinfo'
check mode.unified "$OUT" "cgroup2 is mounted at /sys/fs/cgroup" \
  'grep -q " /sys/fs/cgroup .* - cgroup2 " /proc/self/mountinfo'
check mode.doctor "$OUT" "isobench doctor sees cgroup v2 with cpu, memory and pids" \
  'grep -E "^cgroups +ok +v2 \(" "$OUT/doctor.txt" | tr -d "(),"| every_line_has cpu memory pids || { grep ^cgroups "$OUT/doctor.txt"; exit 1; }'
for run in "$MAIN" "$OCI" "$OOM" "$KILL"; do
  check "mode.meta.${run##*/}" "$run" "meta.json cgroup_mode is v2" \
    '[ "$(meta_str "$run" cgroup_mode)" = v2 ] || meta_str "$run" cgroup_mode'
  check "mode.controllers.${run##*/}" "$run" "meta.json cgroup_controllers has cpu, memory and pids" \
    'tr -d " \n" < "$run/meta.json" | grep -o "\"cgroup_controllers\":\[[^]]*\]" | tr -c "a-z\n" " " | every_line_has cpu memory pids'
done
check mode.leaf "$OUT" "the job (and so isobench) runs in a leaf cgroup, not the root, as on a systemd host" \
  'grep -qx "job cgroup: 0::/init.scope" "$OUT/guest.txt" || grep "^job cgroup" "$OUT/guest.txt"'
