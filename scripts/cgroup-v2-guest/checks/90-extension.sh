# ---- EXTENSION POINT: checks of issue 10's features once they are on main ----------------
# One `check ID RUN_DIR "what" 'shell code'` per assertion, here or in a new NN-what.sh beside
# this file (every checks/*.sh is sourced in name order after the runs). The run dirs are
# $MAIN, $OCI, $OOM and $KILL; the helpers (csv_col, rows_ok, meta_str, readback,
# every_line_is, every_line_has, is_empty_file) are in job.sh. To read another cgroup file
# from every live instance, add its name to LIVE_FILES in job.sh: it lands in
# RUN_DIR/cgroup-readback.txt.
#
# The OOM row's error names the kill and the limit:
#   check oom.error "$OOM" "both rows say oom-killed at memory limit 16 MiB" \
#     '[ "$(grep -c "oom-killed at memory limit 16 MiB" /tmp/c.oomerr)" = 2 ]'
#
# The device rules (on v2 an eBPF program attached to each container cgroup) and the isolation
# read-back, as isobench records them (column names as issue 10 sets them), for example:
#   check iso.devices "$MAIN" "every container row verified its device program" \
#     'csv_col "$MAIN/samples.csv" backend > /tmp/c.backend
#      csv_col "$MAIN/samples.csv" devices > /tmp/c.dev
#      paste -d" " /tmp/c.backend /tmp/c.dev | awk "\$1 == \"container\" && \$2 != \"verified\" { print; bad = 1 } END { exit bad }"'
:
