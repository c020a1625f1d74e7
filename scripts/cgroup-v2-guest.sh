#!/usr/bin/env bash
# Runs isobench inside a QEMU guest whose only cgroup hierarchy is cgroup2, so that the pure v2
# code paths (controller delegation, memory.max/cpu.max/pids.max, memory.current, cpu.stat,
# OOM at memory.max, clean after a killed run) run for real on a host that is itself hybrid.
#
# Usage: scripts/cgroup-v2-guest.sh OUT_DIR [ISOBENCH_BIN]
#   OUT_DIR       new or empty directory; receives the guest's run directories, summary.txt,
#                 guest-status and console.log (the guest's serial console)
#   ISOBENCH_BIN  the static isobench binary to test (default: the newest build under target/)
# Environment (optional): ISOBENCH_GUEST_TIMEOUT_S (900), ISOBENCH_GUEST_MEMORY_MIB (1536),
#   ISOBENCH_GUEST_CPUS (2), ISOBENCH_GUEST_KERNEL (default: newest /boot/vmlinuz-*-cloud-amd64).
# Exit: 0 every guest check passed; 1 a check failed, the guest gave no result or timed out;
#   2 bad input or a missing host tool; 130/143 interrupted. Nothing is left on the host but
#   OUT_DIR: the work dir is removed and QEMU killed on exit, Ctrl-C and SIGTERM, and QEMU gets
#   a parent-death signal, so it dies with this script even on SIGKILL.
#
# Choices, and why:
# - The guest's root is a tmpfs that the initramfs init switch_roots into: pivot_root(2), which
#   every container launch does, fails with EINVAL while the root is the initramfs (rootfs has
#   no parent mount to pivot from). A tmpfs needs no disk image, mkfs or host-side mount.
# - Results come back as a tar stream the guest writes straight onto a second, raw virtio disk
#   (GNU tar reads it back from the image file here): the cloud kernel has no 9p
#   (CONFIG_NET_9P is off), virtiofs needs a host daemon, an ext4 image would need mkfs and a
#   loop mount (host state to clean up) or debugfs to read, and the serial line carries the
#   kernel's messages mixed with ours and would need an encoding for binary files.
# - The initramfs is packed with busybox cpio (busybox-static is already needed) from a staging
#   dir; /dev/console, which needs mknod, comes as a second newc segment written here with
#   printf, so building needs no root. It is left uncompressed: unpacking gzip under TCG costs
#   seconds.
set -euo pipefail

die() { echo "cgroup-v2-guest: $*" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
guest_src="$here/cgroup-v2-guest"

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: scripts/cgroup-v2-guest.sh OUT_DIR [ISOBENCH_BIN]"
out="$1"
bin="${2:-}"
if [ -z "$bin" ]; then
  bin="$(ls -t "$repo"/target/*/release/isobench "$repo"/target/*/debug/isobench \
    "$repo"/target/release/isobench "$repo"/target/debug/isobench 2>/dev/null | head -n1 || true)"
  [ -n "$bin" ] || die "no isobench build under $repo/target: run cargo build, or give ISOBENCH_BIN"
fi
[ -f "$bin" ] && [ -x "$bin" ] || die "ISOBENCH_BIN $bin: not an executable file"
static_or_die() { # what path: the guest has no libc for these two
  if LC_ALL=C readelf -l "$2" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    die "$1 $2: dynamically linked; the guest needs a static build"
  fi
}
static_or_die ISOBENCH_BIN "$bin"

number() { # name value min max: a whole number in range, or exit 2 naming it
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] ||
    die "$1=$2: want a whole number from $3 to $4"
}
timeout_s="${ISOBENCH_GUEST_TIMEOUT_S:-900}"
memory_mib="${ISOBENCH_GUEST_MEMORY_MIB:-1536}"
cpus="${ISOBENCH_GUEST_CPUS:-2}"
number ISOBENCH_GUEST_TIMEOUT_S "$timeout_s" 30 86400
number ISOBENCH_GUEST_MEMORY_MIB "$memory_mib" 512 65536
number ISOBENCH_GUEST_CPUS "$cpus" 1 16

if [ -e "$out" ]; then
  [ -d "$out" ] || die "OUT_DIR $out: exists and is not a directory"
  [ -z "$(ls -A "$out")" ] || die "OUT_DIR $out: not empty (give a new or empty directory)"
fi

kernel="${ISOBENCH_GUEST_KERNEL:-}"
if [ -z "$kernel" ]; then
  kernel="$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n1 || true)"
  [ -n "$kernel" ] || die "no /boot/vmlinuz-*-cloud-amd64: install linux-image-cloud-amd64 (scripts/setup.sh)"
fi
[ -f "$kernel" ] || die "ISOBENCH_GUEST_KERNEL $kernel: no such file"
for cmd in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static tar:tar setpriv:util-linux \
  runc:runc crun:crun ldd:libc-bin; do
  command -v "${cmd%%:*}" >/dev/null || die "${cmd%%:*} not found: install ${cmd#*:} (scripts/setup.sh)"
done
busybox="$(command -v busybox)"
static_or_die busybox "$busybox"
release="${kernel##*/vmlinuz-}"
moddir="/lib/modules/$release"
[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep missing: the kernel's modules (vmlinuz-RELEASE names them)"

# Everything here until QEMU starts only reads the host; from now on the trap owns cleanup.
work=""
qemu_pid=""
cleanup() {
  if [ -n "$qemu_pid" ]; then
    kill -KILL "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
  fi
  if [ -n "$work" ]; then
    rm -rf -- "$work"
    work=""
  fi
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/isobench-v2guest.XXXXXX")"
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,newroot,modules,guest}

# --- modules: the wanted ones and what modules.dep says they need, dependencies first --------
# virtio_pci + virtio_blk: the result disk; virtio_rng: entropy, so getrandom(2) does not wait
# under TCG; overlay: every container's root.
wanted=(virtio_pci virtio_blk virtio_rng overlay)
declare -A dep_of path_of loaded
while IFS= read -r line; do
  mod="${line%%:*}"
  name="${mod##*/}"; name="${name%%.ko*}"; name="${name//-/_}"
  path_of[$name]="$mod"
  dep_of[$name]="${line#*:}"
done < "$moddir/modules.dep"
builtin=" $(sed -e 's#.*/##' -e 's/\.ko.*//' -e 's/-/_/g' "$moddir/modules.builtin" 2>/dev/null | tr '\n' ' ') "
order=()
visit() { # name: its dependencies (last listed first, as modprobe loads them), then itself
  local name="$1" dname deps i
  [ -n "${loaded[$name]:-}" ] && return 0
  loaded[$name]=1
  read -r -a deps <<< "${dep_of[$name]}"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
    dname="${deps[i]##*/}"; dname="${dname%%.ko*}"; dname="${dname//-/_}"
    visit "$dname"
  done
  order+=("$name")
}
for m in "${wanted[@]}"; do
  if [ -n "${path_of[$m]:-}" ]; then
    visit "$m"
  elif [[ "$builtin" != *" $m "* ]]; then
    die "module $m: not in $moddir/modules.dep nor built in"
  fi
done
i=0
for name in "${order[@]}"; do
  src="$moddir/${path_of[$name]}"
  dst="$root/modules/$(printf '%02d' "$i")-$name.ko"
  # busybox insmod loads plain ELF only: unpack what the host compressed.
  case "$src" in
    *.ko) cp "$src" "$dst" ;;
    *.ko.gz) gzip -dc "$src" > "$dst" ;;
    *.ko.xz) command -v xz >/dev/null || die "$src: xz not found (install xz-utils)"; xz -dc "$src" > "$dst" ;;
    *.ko.zst) command -v zstd >/dev/null || die "$src: zstd not found (install zstd)"; zstd -qdc "$src" > "$dst" ;;
    *) die "$src: unknown module format (want .ko, .ko.gz, .ko.xz or .ko.zst)" ;;
  esac
  echo "${dst##*/}" >> "$root/modules/order"
  i=$((i + 1))
done

# --- the rest of the initramfs ------------------------------------------------------------
cp "$busybox" "$root/bin/busybox"
# The debug build is mostly DWARF (86 MB, 14 MB stripped); the guest holds it in RAM twice.
if ! strip -o "$root/bin/isobench" "$bin" 2>/dev/null; then
  echo "cgroup-v2-guest: strip failed or missing (binutils): using $bin unstripped" >&2
  cp "$bin" "$root/bin/isobench"
fi
# The OCI runtimes, peers in the guest's scenario, with the shared libraries ldd names, at
# the same paths (the guest has no ld.so.cache: the loader's built-in dirs find them).
for rt in runc crun; do
  exe="$(command -v "$rt")"
  cp "$exe" "$root/bin/$rt"
  for lib in $(ldd "$exe" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp "$guest_src/init" "$root/init"
cp "$guest_src/job.sh" "$repo/scenarios/cgroup-v2.toml" "$repo/scenarios/cgroup-v2-oom.toml" \
  "$guest_src/oci.toml" "$guest_src/kill.toml" "$guest_src/probe.toml" "$root/guest/"
cp -r "$guest_src/checks" "$root/guest/checks"
chmod 755 "$root/init" "$root/bin/busybox" "$root/bin/isobench"

newc() { # name mode rdev_major rdev_minor: one empty newc entry (see the kernel's buffer-format.rst)
  local name="$1" size=$((${#1} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    300000 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$size" 0
  printf '%s\0' "$name"
  # header (110 bytes) + name, padded to a multiple of 4
  head -c $(((4 - (110 + size) % 4) % 4)) /dev/zero
}
initrd="$work/initramfs.cpio"
(cd "$root" && find . -mindepth 1 | sed 's#^\./##' | LC_ALL=C sort |
  "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) > "$initrd"
{ newc dev/console $((0020600)) 5 1; newc TRAILER!!! 0 0 0; } >> "$initrd"

# --- boot ---------------------------------------------------------------------------------
result="$work/result.img"
truncate -s 512M "$result"
console="$out/console.log"
: > "$console"
echo "cgroup-v2-guest: booting $kernel (TCG, $cpus vCPUs, $memory_mib MiB), console in $console"
# cgroup_no_v1=all: no v1 controller can be mounted in the guest, whatever runs there.
# setpriv --pdeathsig: QEMU dies with this script even when the script is SIGKILLed.
setpriv --pdeathsig KILL -- qemu-system-x86_64 \
  -nodefaults -no-user-config -display none -no-reboot \
  -machine q35,accel=tcg -m "$memory_mib" -smp "$cpus" \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 loglevel=4 cgroup_no_v1=all" \
  -drive "file=$result,format=raw,if=none,id=out,cache=unsafe" \
  -device virtio-blk-pci,drive=out,serial=isobench-out \
  -device virtio-rng-pci \
  -serial "file:$console" &
qemu_pid=$!
start=$SECONDS
rc=0
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ $((SECONDS - start)) -ge "$timeout_s" ]; then
    echo "cgroup-v2-guest: the guest did not finish within ${timeout_s} s (ISOBENCH_GUEST_TIMEOUT_S); see $console" >&2
    rc=1
    break
  fi
  sleep 1
done
if [ "$rc" -eq 0 ]; then
  wait "$qemu_pid" || { echo "cgroup-v2-guest: qemu exited with status $?; see $console" >&2; rc=1; }
fi
kill -KILL "$qemu_pid" 2>/dev/null || true
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""
elapsed=$((SECONDS - start))

# GNU tar stops at the archive's end blocks; an image the guest never wrote is all zeros and
# reads as an empty archive. --no-same-owner/permissions: files become the caller's.
tar -xf "$result" -C "$out" --no-same-owner --no-same-permissions 2>/dev/null ||
  echo "cgroup-v2-guest: the result disk holds no readable tar stream" >&2
if [ ! -f "$out/guest-status" ]; then
  echo "cgroup-v2-guest: the guest returned no result after ${elapsed} s; see $console" >&2
  exit 1
fi
status="$(cat "$out/guest-status")"
if [ "$status" != 0 ]; then
  echo "cgroup-v2-guest: the guest job failed (status $status) after ${elapsed} s:" >&2
  grep '^FAIL' "$out/summary.txt" >&2 || true
  exit 1
fi
[ "$rc" -eq 0 ] || exit 1
echo "cgroup-v2-guest: every guest check passed in ${elapsed} s; results in $out (summary.txt)"
