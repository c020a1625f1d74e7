# ---- EXTENSION POINT: more checks ----------------------------------------------------------
# One `check ID RUN_DIR "what" 'shell code'` per assertion, here or in a new NN-what.sh beside
# this file (every checks/*.sh is sourced in name order after the runs). The run dirs are
# $MAIN, $OCI, $OOM, $KILL and $PROBE; the helpers (csv_col, rows_ok, meta_str, readback,
# every_line_is, every_line_has, is_empty_file) are in job.sh, col_of and probe_has in
# 60-isolation.sh. To read another cgroup file from every live instance, add its name to
# LIVE_FILES in job.sh: it lands in RUN_DIR/cgroup-readback.txt.
:
