# Issue 10's security profiles on cgroup v2: the device allow-list is an eBPF program attached
# to each container cgroup (no devices file exists on v2), read back by isobench itself; the
# capabilities, no_new_privs and seccomp read back from /proc; and the agent's probes from
# inside (the guest's Debian kernel has /proc/kcore and /proc/sysrq-trigger).

# col_of RUN_DIR BACKEND COLUMN: COLUMN of every samples.csv row of BACKEND, one a line.
col_of() {
  csv_col "$1/samples.csv" backend > /tmp/c.b
  csv_col "$1/samples.csv" "$3" > /tmp/c.v
  paste -d'	' /tmp/c.b /tmp/c.v | awk -F'	' -v b="$2" '$1 == b { print $2 }'
}

# probe_has RUN_DIR BACKEND KEY VALUE: every row of BACKEND has "KEY":"VALUE" in its probe.
probe_has() {
  col_of "$1" "$2" probe > /tmp/c.p
  [ -s /tmp/c.p ] || { echo "no $2 rows"; return 1; }
  while IFS= read -r _p; do
    case "$_p" in *"\"$3\":\"$4\""*) ;; *) echo "$2: $_p"; return 1 ;; esac
  done < /tmp/c.p
}

# Docker's 14 capabilities as /proc/PID/status prints them.
DOCKER_CAPS=00000000a80425fb

check iso.main.devices "$MAIN" "every container row verified isobench's eBPF device program" \
  'col_of "$MAIN" container devices | every_line_is "ebpf: 1 program (isobench'"'"'s)"'
check iso.main.caps "$MAIN" "every container row runs with Docker's capabilities, none inheritable" \
  'col_of "$MAIN" container cap_eff | every_line_is $DOCKER_CAPS &&
   col_of "$MAIN" container cap_inh | every_line_is 0000000000000000'
check iso.main.seccomp "$MAIN" "every container row has a seccomp filter and no_new_privs" \
  'col_of "$MAIN" container seccomp | every_line_is filter &&
   col_of "$MAIN" container no_new_privs | every_line_is true'

check probe.exit "$PROBE" "isobench run probe.toml exits 0" \
  '[ "$(cat "$PROBE/exit-code")" = 0 ] || { cat "$PROBE/stderr.txt"; exit 1; }'
check probe.docker.devices "$PROBE" "container+docker: isobench's eBPF device program" \
  'col_of "$PROBE" container+docker devices | every_line_is "ebpf: 1 program (isobench'"'"'s)"'
check probe.docker.inside "$PROBE" "container+docker: no block device node, kcore masked, sysrq-trigger and /proc/sys read-only, no mount, no user namespace" \
  'probe_has "$PROBE" container+docker mknod_block EPERM &&
   probe_has "$PROBE" container+docker kcore masked &&
   probe_has "$PROBE" container+docker sysrq_trigger_open_write EROFS &&
   probe_has "$PROBE" container+docker proc_sys_open_write EROFS &&
   probe_has "$PROBE" container+docker mount_tmpfs EPERM &&
   probe_has "$PROBE" container+docker unshare_user EPERM'
check probe.runc.docker "$PROBE" "oci-runc+docker: runc's own device program, no open of a block device, kcore masked, no mount, no user namespace" \
  'col_of "$PROBE" oci-runc+docker devices | every_line_is "ebpf: 1 program" &&
   probe_has "$PROBE" oci-runc+docker kcore masked &&
   probe_has "$PROBE" oci-runc+docker mount_tmpfs EPERM &&
   probe_has "$PROBE" oci-runc+docker unshare_user EPERM &&
   ! probe_has "$PROBE" oci-runc+docker open_block ok >/dev/null'
check probe.none "$PROBE" "container+none: no device program, and root inside can mknod, mount and read kcore" \
  'col_of "$PROBE" container+none devices | every_line_is none &&
   probe_has "$PROBE" container+none mknod_block ok &&
   probe_has "$PROBE" container+none mount_tmpfs ok &&
   probe_has "$PROBE" container+none kcore readable'
check probe.nothing-left "$PROBE" "nothing of the probe run is left" 'is_empty_file "$PROBE/leftovers.txt"'
