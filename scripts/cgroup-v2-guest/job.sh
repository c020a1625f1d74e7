#!/bin/sh
# The guest job of scripts/cgroup-v2-guest.sh: run by busybox sh inside a guest whose only
# cgroup hierarchy is cgroup2 at /sys/fs/cgroup, with the results directory as $1.
#
# It acts and records; the files in checks/ judge (see "Adding a check").
#   main/  isobench run cgroup-v2.toml (process and container, N = 1 and 10, memory, cpu and
#          pids limits); must exit 0
#   oci/   isobench run oci.toml (runc and crun, N = 1 and 4, the same limits); must exit 0
#   oom/   isobench run cgroup-v2-oom.toml (touch-memory over memory.max), starting with no
#          controller enabled at the root; must exit 1
#   kill/  isobench run kill.toml, SIGKILLed once 5 instances run, then isobench clean
#   probe/ isobench run probe.toml (container and runc under the docker and none profiles,
#          the agent's isolation probes from inside); must exit 0
# Besides isobench's own files, each run dir gets:
#   exit-code, stdout.txt, stderr.txt   of the isobench run
#   cgroup-readback.txt           "INSTANCE FILE: VALUE" for every file in LIVE_FILES, read once
#                                 from every instance cgroup as soon as the agent runs in it
#                                 (every backend writes the limits before the agent execs)
#   run-cgroups.txt               "DIR cgroup.subtree_control: ..." of isobench/ and the run dir
#   oom-events.txt                memory.events of any instance cgroup seen with oom_kill > 0
#   leftovers.txt                 what of isobench is on the guest after the run (empty = clean)
# oom/ also dmesg-oom.txt (the kernel's OOM-kill lines) and root-subtree.txt (the root's
# subtree_control before and after); kill/ also populated-at-kill, left-after-kill.txt,
# stray.txt, clean.txt and clean-exit-code. The guest's own facts go to guest.txt and
# `isobench doctor`'s view to doctor.txt. summary.txt lists every check ("ok" or "FAIL",
# its id, what it saw); the job exits 1 if any check failed, 0 otherwise.
#
# Adding a check: drop a file checks/NN-what.sh (sourced in name order after every run, with
# MAIN, OCI, OOM and KILL set to the run dirs and the helpers below); call
#   check ID RUN_DIR "what is expected" 'shell code'   (ok when the code succeeds)
# once per assertion. To record something more from every live instance cgroup, add its file
# name to LIVE_FILES below; it appears in cgroup-readback.txt as "INSTANCE FILE: VALUE".
export PATH=/bin
OUT="$1"
G=/guest
ISOBENCH=/bin/isobench
# Seconds one isobench run may take before it is interrupted (SIGINT: it keeps its rows);
# each takes under a minute here, and all of them must fit in the host's timeout (900 s).
STEP_TIMEOUT=180
# ---- EXTENSION POINT: cgroup files read from every live instance (issue 10's device rules,
# for example, have no file on v2: they are an eBPF program, read back by isobench itself).
LIVE_FILES="cgroup.controllers cgroup.type memory.max memory.current memory.events memory.stat \
cpu.max cpu.stat pids.max pids.current"
CG=/sys/fs/cgroup
mkdir -p "$OUT"
: > "$OUT/summary.txt"
FAILED=0

log() {
  read -r _up _ < /proc/uptime
  echo "guest-job [${_up} s]: $*"
}

# ---- helpers for checks ------------------------------------------------------------------

# check ID RUN_DIR WHAT CODE: runs the shell code CODE in a subshell (it sees every variable
# and helper; `exit 1` or a failing last command fails it, and what it prints is the reason)
# and records "ok ID: WHAT" or "FAIL ID: WHAT (reason)" in summary.txt and
# RUN_DIR/guest-checks.txt.
check() {
  if (eval "$4") > /tmp/check.out 2>&1; then
    _line="ok   $1: $3"
  else
    _line="FAIL $1: $3 ($(tr '\n' ' ' < /tmp/check.out | cut -c1-300))"
    FAILED=$((FAILED + 1))
  fi
  echo "$_line" >> "$OUT/summary.txt"
  [ -d "$2" ] && echo "$_line" >> "$2/guest-checks.txt"
  echo "$_line"
}

# csv_col FILE COLUMN: the column's value of every row of a CSV file (RFC 4180 quotes).
csv_col() {
  awk -v want="$2" '
    function split_csv(line, f,    n, i, c, q, cur) {
      # Only a line with quotes needs the slow walk (this runs under TCG).
      if (index(line, "\"") == 0) return split(line, f, ",")
      n = 0; cur = ""; q = 0
      for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (q) { if (c == "\"") { if (substr(line, i + 1, 1) == "\"") { cur = cur c; i++ } else q = 0 } else cur = cur c }
        else if (c == "\"") q = 1
        else if (c == ",") { f[++n] = cur; cur = "" }
        else cur = cur c
      }
      f[++n] = cur
      return n
    }
    NR == 1 { n = split_csv($0, h); for (i = 1; i <= n; i++) if (h[i] == want) col = i; if (!col) exit 2; next }
    { split_csv($0, f); print f[col] }' "$1"
}

# meta_str RUN_DIR KEY: a top-level string of meta.json (pretty-printed: one key a line).
meta_str() {
  sed -n "s/^  \"$2\": \"\\(.*\\)\",\{0,1\}\$/\\1/p" "$1/meta.json"
}

# readback RUN_DIR INSTANCE_PREFIX FILE: the values read back for FILE from the instances whose
# name starts with INSTANCE_PREFIX, one a line.
readback() {
  sed -n "s/^$2[^ ]* $3: //p" "$1/cgroup-readback.txt"
}

# every_line_is EXPECTED: reads lines on stdin; fails (naming the first other) unless there
# is at least one and every one is EXPECTED.
every_line_is() {
  _n=0
  while IFS= read -r _l; do
    [ "$_l" = "$1" ] || { echo "got '$_l', want '$1'"; return 1; }
    _n=$((_n + 1))
  done
  [ "$_n" -gt 0 ] || { echo "no value read"; return 1; }
}

# every_line_has WORD...: reads lines on stdin; fails unless there is at least one and every
# one has each WORD among its space-separated words.
every_line_has() {
  _n=0
  while IFS= read -r _l; do
    for _w in "$@"; do
      case " $_l " in *" $_w "*) ;; *) echo "no $_w in '$_l'"; return 1 ;; esac
    done
    _n=$((_n + 1))
  done
  [ "$_n" -gt 0 ] || { echo "no value read"; return 1; }
}

# rows_ok RUN_DIR BACKEND N: "ROWS OK" of that batch in RUN_DIR/samples.csv.
rows_ok() {
  csv_col "$1/samples.csv" backend > /tmp/rows.b
  csv_col "$1/samples.csv" n > /tmp/rows.n
  csv_col "$1/samples.csv" ok > /tmp/rows.ok
  paste -d' ' /tmp/rows.b /tmp/rows.n /tmp/rows.ok |
    awk -v b="$2" -v n="$3" '$1 == b && $2 == n { r++; if ($3 == "true") ok++ } END { print r + 0, ok + 0 }'
}

is_empty_file() { [ ! -s "$1" ] || { head -n 20 "$1"; return 1; }; }

# ---- recording ---------------------------------------------------------------------------

# One line per file in LIVE_FILES of instance cgroup $1 (newlines in a value become ';'), or
# nothing (status 1) until the agent runs there. A process in the cgroup is not enough: an OCI
# runtime puts its init there first and writes the limits before it execs the agent. A
# reading is dropped whole (status 1) if the cgroup went away while it was read.
read_instance() {
  _pid=""
  read -r _pid 2>/dev/null < "$1/cgroup.procs"
  [ -n "$_pid" ] || return 1
  _comm=""
  read -r _comm 2>/dev/null < "/proc/$_pid/comm"
  [ "$_comm" = isobench ] || return 1
  _name="${1##*/}"
  _all=""
  for _f in $LIVE_FILES; do
    _v=""
    while IFS= read -r _l; do _v="${_v:+$_v;}$_l"; done 2>/dev/null < "$1/$_f"
    _all="$_all$_name $_f: $_v
"
  done
  [ -d "$1" ] || return 1
  printf '%s' "$_all"
}

# watch_cgroups DIR STOPFILE: until STOPFILE exists, polls isobench's cgroups and records the
# first reading of every populated instance into DIR/cgroup-readback.txt, the run cgroups'
# subtree_control into DIR/run-cgroups.txt and any memory.events with an OOM kill.
watch_cgroups() {
  _seen=" "
  while [ ! -e "$2" ]; do
    for _d in "$CG"/isobench "$CG"/isobench/*; do
      [ -d "$_d" ] || continue
      case "$_seen" in *" $_d "*) continue ;; esac
      _sc=""
      read -r _sc 2>/dev/null < "$_d/cgroup.subtree_control"
      [ -n "$_sc" ] || continue
      echo "${_d#"$CG"/} cgroup.subtree_control: $_sc" >> "$1/run-cgroups.txt"
      _seen="$_seen$_d "
    done
    for _d in "$CG"/isobench/*/*; do
      [ -d "$_d" ] || continue
      case "$_seen" in
        *" $_d "*)
          _ev=""
          [ -e "$_d/memory.events" ] && while read -r _k _v; do
            [ "$_k" = oom_kill ] && [ "$_v" != 0 ] && _ev=1
          done 2>/dev/null < "$_d/memory.events"
          if [ -n "$_ev" ]; then
            case "$_seen" in *" oom:$_d "*) ;; *)
              echo "${_d##*/} memory.events: $(tr '\n' ';' 2>/dev/null < "$_d/memory.events")" >> "$1/oom-events.txt"
              _seen="$_seen""oom:$_d " ;;
            esac
          fi
          continue ;;
      esac
      read_instance "$_d" >> "$1/cgroup-readback.txt" && _seen="$_seen$_d "
    done
    sleep 0.1
  done
}

# What of isobench is on the guest: cgroups, mounts, marked processes, state and cache dirs.
leftovers() {
  [ -e "$CG/isobench" ] && find "$CG/isobench" -type d | sed 's/^/cgroup /'
  grep isobench /proc/self/mountinfo | sed 's/^/mount /'
  for _p in /proc/[0-9]*; do
    if tr '\0' '\n' 2>/dev/null < "$_p/environ" | grep -q '^ISOBENCH_RUN_ID='; then
      echo "process ${_p#/proc/} $(tr '\0' ' ' 2>/dev/null < "$_p/cmdline")"
    fi
  done
  for _s in /var/lib/isobench /var/cache/isobench; do
    [ -e "$_s" ] && ls -A "$_s" | sed "s#^#state $_s/#"
  done
  return 0
}

# run_isobench NAME SCENARIO: isobench run into $OUT/NAME with the watcher beside it; the
# readings are kept in /tmp until the run ends (isobench wants its --out to itself).
run_isobench() {
  _name="$1"; _tmp="/tmp/$1"
  mkdir -p "$_tmp"
  : > "$_tmp/cgroup-readback.txt"; : > "$_tmp/run-cgroups.txt"; : > "$_tmp/oom-events.txt"
  rm -f "$_tmp/stop"
  watch_cgroups "$_tmp" "$_tmp/stop" &
  _watcher=$!
  log "isobench run $2"
  timeout -s INT "$STEP_TIMEOUT" "$ISOBENCH" run "$G/$2" --out "$OUT/$_name" -q \
    > "$_tmp/stdout.txt" 2> "$_tmp/stderr.txt"
  _rc=$?
  touch "$_tmp/stop"
  wait "$_watcher"
  log "isobench run $2: exit $_rc"
  cat "$_tmp/stdout.txt" "$_tmp/stderr.txt"
  mkdir -p "$OUT/$_name"
  echo "$_rc" > "$OUT/$_name/exit-code"
  for _f in stdout.txt stderr.txt cgroup-readback.txt run-cgroups.txt oom-events.txt; do
    mv "$_tmp/$_f" "$OUT/$_name/$_f"
  done
  leftovers > "$OUT/$_name/leftovers.txt"
}

# ---- the guest ---------------------------------------------------------------------------
{
  echo "kernel: $(uname -r)"
  echo "cmdline: $(cat /proc/cmdline)"
  echo "cgroup mounts:"
  grep -E ' - cgroup2? ' /proc/self/mountinfo
  echo "root cgroup.controllers: $(cat "$CG/cgroup.controllers")"
  echo "root cgroup.subtree_control: $(cat "$CG/cgroup.subtree_control")"
  echo "job cgroup: $(cat /proc/self/cgroup)"
  echo "cpus: $(grep -c ^processor /proc/cpuinfo)"
  grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
} > "$OUT/guest.txt"
cat "$OUT/guest.txt"

# ---- the runs ----------------------------------------------------------------------------
MAIN="$OUT/main"
OCI="$OUT/oci"
OOM="$OUT/oom"
KILL="$OUT/kill"
PROBE="$OUT/probe"

"$ISOBENCH" doctor > "$OUT/doctor.txt" 2>&1
echo "$?" > "$OUT/doctor-exit-code"

run_isobench main cgroup-v2.toml
run_isobench oci oci.toml
run_isobench probe probe.toml

# The OOM run starts with no controller enabled below the root, so that isobench's own
# delegation (create_run writing +memory +cpu +pids from the root down) is what enables them.
# (The OCI runtimes enable every controller on their way down: take them all off.)
for c in $(cat "$CG/cgroup.subtree_control"); do
  echo "-$c" > "$CG/cgroup.subtree_control"
done
echo "before: $(cat "$CG/cgroup.subtree_control")" > /tmp/root-subtree.txt
run_isobench oom cgroup-v2-oom.toml
echo "after: $(cat "$CG/cgroup.subtree_control")" >> /tmp/root-subtree.txt
mv /tmp/root-subtree.txt "$OOM/root-subtree.txt"
# The kernel's own account of each OOM kill names the memory cgroup whose limit was hit.
dmesg | grep -E 'oom-kill:|Memory cgroup out of memory' > "$OOM/dmesg-oom.txt"

# A run SIGKILLed mid-batch, then clean.
mkdir -p /tmp/kill
log "isobench run kill.toml, to be SIGKILLed"
"$ISOBENCH" run "$G/kill.toml" --out "$KILL" -q > /tmp/kill/stdout.txt 2> /tmp/kill/stderr.txt &
harness=$!
waited=0
while kill -0 "$harness" 2>/dev/null && [ "$waited" -lt 1200 ]; do
  populated=0
  for d in "$CG"/isobench/*/*; do
    # cgroupfs files have no size: read one line to see if a process sits in it.
    p=""
    read -r p 2>/dev/null < "$d/cgroup.procs"
    [ -n "$p" ] && populated=$((populated + 1))
  done
  [ "$populated" -ge 5 ] && break
  sleep 0.1
  waited=$((waited + 1))
done
kill -KILL "$harness"
wait "$harness"
echo "$?" > /tmp/kill/exit-code
mkdir -p "$KILL"
mv /tmp/kill/* "$KILL/"
echo "$populated" > "$KILL/populated-at-kill"
leftovers > "$KILL/left-after-kill.txt"
log "killed the harness with $populated instances running; left: $(wc -l < "$KILL/left-after-kill.txt") items"
# A process that outlived its harness (the instances themselves die with it: parent-death
# signal), stood in for by a sleep moved into one of the dead run's instance cgroups: clean
# must find it by its cgroup and kill it.
stray_cg=""
for d in "$CG"/isobench/*/*; do
  [ -d "$d" ] && stray_cg="$d" && break
done
sleep 600 &
stray=$!
if [ -n "$stray_cg" ]; then
  echo "$stray" > "$stray_cg/cgroup.procs"
fi
echo "pid $stray in ${stray_cg:-(no cgroup left)}: $(cat /proc/$stray/cgroup)" > "$KILL/stray.txt"
echo "state before clean: $(awk '{ print $3 }' "/proc/$stray/stat" 2>/dev/null)" >> "$KILL/stray.txt"
"$ISOBENCH" clean > "$KILL/clean.txt" 2>&1
echo "$?" > "$KILL/clean-exit-code"
cat "$KILL/clean.txt"
# A killed stray is a zombie until this shell reaps it (busybox sh may already have).
state="$(awk '{ print $3 }' "/proc/$stray/stat" 2>/dev/null)"
echo "state after clean: ${state:-gone}" >> "$KILL/stray.txt"
[ "$state" = Z ] || kill -KILL "$stray" 2>/dev/null
wait "$stray"
leftovers > "$KILL/leftovers.txt"

# ---- the checks --------------------------------------------------------------------------
for c in "$G"/checks/*.sh; do
  . "$c"
done
log "$(grep -c '^ok' "$OUT/summary.txt") checks passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
