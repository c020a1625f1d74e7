#!/usr/bin/env bash
# Installs the system packages isobench needs. Idempotent: packages already present are skipped,
# and `apt-get update` runs first only when something is missing.
# Usage: scripts/setup.sh        (as root; CI runs it from .ci/run)
set -euo pipefail

packages=(
  qemu-system-x86        # vm backend
  qemu-utils             # qemu-img: qcow2 overlays for VMs
  busybox-static         # the default image: a rootfs built from the host's busybox
  linux-image-cloud-amd64 # guest kernel with virtio drivers for the vm backend
  runc crun              # OCI runtimes, peers of our own container launcher
  docker.io              # docker backend: dockerd + docker CLI (pulls containerd); isobench starts a private daemon when none answers
  runsc                  # gVisor: a sandboxing OCI runtime (a user-space kernel per sandbox)
  lxc                    # LXC 5: the lxc backend (lxc-start, lxc-stop, lxc-destroy)
  e2fsprogs              # mkfs.ext4 -d: the VM base disk from a rootfs
  util-linux             # unshare(1): the reference point for container start-up
  procps                 # ps inside tests and for humans
  fonts-dejavu-core      # the font every plot's text is set in (report, plan)
  chromium               # headless check that report.html draws every plot (tests)
  binutils               # strip: the cgroup v2 guest's copy of isobench (86 MB debug, 14 MB stripped)
  ansible-core           # deploy/ansible: the fleet playbook (tests/fleet.rs runs it on local hosts)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: must run as root (it installs Debian packages)" >&2
  exit 2
fi

missing_packages() {
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      echo "$p"
    fi
  done
}

export DEBIAN_FRONTEND=noninteractive
updated=0
# Two passes: installing one package can remove another (on the stock image, installing
# qemu-system-x86 removes the preinstalled backports qemu-utils, taking qemu-img with it).
for pass in 1 2; do
  mapfile -t missing < <(missing_packages)
  [ "${#missing[@]}" -eq 0 ] && break
  echo "setup: installing ${missing[*]}"
  if [ "$updated" -eq 0 ]; then
    apt-get update -qq
    updated=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
done

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: still missing after installing: ${missing[*]}" >&2
  exit 1
fi
for cmd in qemu-system-x86_64 qemu-img busybox mkfs.ext4 runc crun runsc lxc-start lxc-stop dockerd containerd unshare setpriv chromium strip ansible-playbook; do
  command -v "$cmd" >/dev/null || { echo "setup: $cmd not found after installing" >&2; exit 1; }
done
echo "setup: all system packages present"
