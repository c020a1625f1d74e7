# After each run nothing of isobench is left in the guest: no cgroup under
# /sys/fs/cgroup/isobench, no mount, no marked process, no state dir. After a SIGKILLed run
# something is left, and `isobench clean` removes it all.
check left.main "$MAIN" "nothing left after the main run" 'is_empty_file "$MAIN/leftovers.txt"'
check left.oom "$OOM" "nothing left after the OOM run" 'is_empty_file "$OOM/leftovers.txt"'
check left.oci "$OCI" "nothing left after the OCI run" 'is_empty_file "$OCI/leftovers.txt"'
check kill.mid-batch "$KILL" "the harness was killed (137) with at least 5 instances running" \
  '[ "$(cat "$KILL/populated-at-kill")" -ge 5 ] && [ "$(cat "$KILL/exit-code")" = 137 ] ||
   { cat "$KILL/populated-at-kill" "$KILL/exit-code"; exit 1; }'
check kill.left "$KILL" "the killed run left cgroups and its state dir (clean has work to do)" \
  'grep -q "^cgroup " "$KILL/left-after-kill.txt" && grep -q "^state " "$KILL/left-after-kill.txt"'
check kill.clean "$KILL" "isobench clean exits 0 and names the killed run" \
  '[ "$(cat "$KILL/clean-exit-code")" = 0 ] && grep -q "run $(meta_str "$KILL" run_id)\$" "$KILL/clean.txt" || { cat "$KILL/clean.txt"; exit 1; }'
check kill.nothing-left "$KILL" "nothing left after clean" 'is_empty_file "$KILL/leftovers.txt"'
check kill.stray "$KILL" "clean killed the process left in the dead run's cgroup" \
  'grep -q "^pid [0-9]* in $CG/isobench/" "$KILL/stray.txt" && grep -Eqx "state before clean: [RS]" "$KILL/stray.txt" &&
   grep -Eqx "state after clean: (Z|gone)" "$KILL/stray.txt" || { cat "$KILL/stray.txt"; exit 1; }'
