# The limits written, read back from each live instance cgroup, and the controllers delegated
# down to it (a child's cgroup.controllers is its parent's subtree_control).
check limits.seen "$MAIN" "the watcher read every backend's instances" \
  'for b in process container; do grep -q "^$b-n" "$MAIN/cgroup-readback.txt" || { echo "no $b"; exit 1; }; done'
check limits.seen.oci "$OCI" "the watcher read every runtime's instances" \
  'for b in oci-runc oci-crun; do grep -q "^$b-n" "$OCI/cgroup-readback.txt" || { echo "no $b"; exit 1; }; done'
# Our containers (limits written by isobench) and the OCI runtimes' (from config.json).
for rb in "$MAIN container" "$OCI oci-runc" "$OCI oci-crun"; do
  run="${rb% *}"; b="${rb#* }"
  check "limits.memory.max.$b" "$run" "$b: memory.max = 33554432 (32 MiB)" \
    'readback "$run" $b-n memory.max | every_line_is 33554432'
  check "limits.cpu.max.$b" "$run" "$b: cpu.max = 50000 100000 (0.5 CPU)" \
    'readback "$run" $b-n cpu.max | every_line_is "50000 100000"'
  check "limits.pids.max.$b" "$run" "$b: pids.max = 32" \
    'readback "$run" $b-n pids.max | every_line_is 32'
done
check limits.process-unlimited "$MAIN" "processes (accounting only): memory.max and pids.max are max" \
  'readback "$MAIN" process memory.max | every_line_is max && readback "$MAIN" process pids.max | every_line_is max'
for run in "$MAIN" "$OCI"; do
  check "limits.delegated.${run##*/}" "$run" "every instance has cpu, memory and pids in cgroup.controllers" \
    'readback "$run" "" cgroup.controllers | every_line_has cpu memory pids'
  check "limits.domain.${run##*/}" "$run" "every instance cgroup is a domain (not threaded)" \
    'readback "$run" "" cgroup.type | every_line_is domain'
done
check limits.run-subtree "$MAIN" "isobench/ and the run dir enable cpu, memory and pids for their children" \
  '[ "$(wc -l < "$MAIN/run-cgroups.txt")" = 2 ] && sed "s/.*: //" "$MAIN/run-cgroups.txt" | every_line_has cpu memory pids || { cat "$MAIN/run-cgroups.txt"; exit 1; }'
check limits.root-delegation "$OOM" "with no controller enabled at the root, isobench enabled cpu, memory and pids there itself" \
  'grep -qx "before: " "$OOM/root-subtree.txt" && grep "^after: " "$OOM/root-subtree.txt" | every_line_has cpu memory pids || { cat "$OOM/root-subtree.txt"; exit 1; }'
