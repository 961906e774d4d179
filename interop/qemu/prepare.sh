#!/usr/bin/env bash
# Prepares, once, what the QEMU interop run needs, in a cache directory outside the repository:
#   $CACHE/chroot        a Debian sid chroot (debootstrap --variant=minbase) with qemu-system-x86 (QEMU 11,
#                        whose vfio-user-pci device is the vfio-user client), busybox-static, gpiod, pciutils;
#                        the kernel of linux-image-amd64 unpacked (not installed: no initramfs generator runs)
#                        in /opt/vfu-kernel
#   $CACHE/guest/vmlinuz the guest kernel
#   $CACHE/guest/base/   the static part of the guest initramfs: busybox, the GPIO modules (decompressed,
#                        in load order) and libgpiod's tools with their libraries
# Idempotent: a finished step leaves a stamp file and is skipped next time. Needs root (debootstrap, chroot).
# Environment: VFU_QEMU_CACHE (default /var/cache/vfu-qemu), VFU_QEMU_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
CACHE="${VFU_QEMU_CACHE:-/var/cache/vfu-qemu}"
MIRROR="${VFU_QEMU_MIRROR:-http://deb.debian.org/debian}"
ROOT="$CACHE/chroot"
GUEST="$CACHE/guest"
# modules the guest loads for the devices under test (their dependencies are added)
MODULES="gpio-pci-idio-16"
PACKAGES="qemu-system-x86 busybox-static kmod xz-utils zstd cpio gpiod pciutils"

log() { echo "prepare: $*" >&2; }
die() { echo "prepare: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot)"
mkdir -p "$CACHE"

# 1. debootstrap on the host
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap on the host"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap; } \
    >"$CACHE/host-apt.log" 2>&1 || { tail -20 "$CACHE/host-apt.log" >&2; die "installing debootstrap failed"; }
fi

# 2. the sid chroot
if [ ! -f "$ROOT/.vfu-debootstrap-done" ]; then
  log "debootstrap sid into $ROOT (a few minutes)"
  rm -rf "$ROOT"
  debootstrap --variant=minbase sid "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  touch "$ROOT/.vfu-debootstrap-done"
fi

# 3. packages inside the chroot (the host's apt configuration is not touched)
in_chroot() {
  unshare -m -- sh -c 'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && shift && exec chroot "$@"' \
    sh "$ROOT" "$ROOT" "$@"
}
if [ ! -f "$ROOT/.vfu-packages-done" ]; then
  log "installing $PACKAGES in the chroot"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  in_chroot env DEBIAN_FRONTEND=noninteractive sh -c "
      apt-get -o Acquire::Check-Valid-Until=false update -qq &&
      apt-get -o Acquire::Check-Valid-Until=false install -y -qq --no-install-recommends $PACKAGES" \
    >"$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; die "apt-get in the chroot failed (log: $CACHE/apt.log)"; }
  in_chroot apt-get clean >/dev/null 2>&1 || true
  touch "$ROOT/.vfu-packages-done"
fi

# 3b. the guest kernel: linux-image-amd64's packages downloaded and unpacked into /opt/vfu-kernel (installing
# them would pull in and run an initramfs generator for minutes; the guest gets our initramfs instead)
if [ ! -f "$ROOT/.vfu-kernel-done" ]; then
  log "unpacking the kernel of linux-image-amd64 into $ROOT/opt/vfu-kernel"
  in_chroot sh -euc '
    deps() { apt-cache depends "$1" | awk -v p="$2" "\$1 ~ /Depends:/ && index(\$2, p) == 1 { print \$2 }"; }
    image=$(deps linux-image-amd64 linux-image- | head -1)
    [ -n "$image" ] || { echo "no linux-image package behind linux-image-amd64" >&2; exit 1; }
    pkgs="$image $(deps "$image" linux-binary-) $(deps "$image" linux-modules-) $(deps "$image" linux-base-)"
    rm -rf /opt/vfu-kernel /var/tmp/vfu-kernel-debs && mkdir -p /opt/vfu-kernel /var/tmp/vfu-kernel-debs
    chown _apt /var/tmp/vfu-kernel-debs 2>/dev/null || true
    cd /var/tmp/vfu-kernel-debs
    apt-get -o Acquire::Check-Valid-Until=false download $pkgs
    for d in *.deb; do dpkg-deb -x "$d" /opt/vfu-kernel; done
    rm -rf /var/tmp/vfu-kernel-debs
    kver=$(ls /opt/vfu-kernel/lib/modules /opt/vfu-kernel/usr/lib/modules 2>/dev/null | grep -v : | sort -V | tail -1)
    [ -n "$kver" ] || { echo "no modules in $pkgs" >&2; exit 1; }
    [ -d /opt/vfu-kernel/lib/modules ] || ln -s usr/lib /opt/vfu-kernel/lib
    depmod -b /opt/vfu-kernel "$kver"
    echo "$kver" >/opt/vfu-kernel/version' >"$CACHE/kernel.log" 2>&1 \
    || { tail -20 "$CACHE/kernel.log" >&2; die "unpacking the kernel failed (log: $CACHE/kernel.log)"; }
  touch "$ROOT/.vfu-kernel-done"
fi

# 4. the guest: kernel and the static part of the initramfs
if [ ! -f "$GUEST/.vfu-guest-done" ]; then
  log "building the guest base in $GUEST"
  rm -rf "$GUEST"
  mkdir -p "$GUEST/base"/{bin,sbin,lib/modules,proc,sys,dev,tmp,usr/bin,usr/lib}
  K=/opt/vfu-kernel
  kver="$(cat "$ROOT$K/version")"
  kernel=""
  for k in "$ROOT$K/lib/modules/$kver/vmlinuz" "$ROOT$K/boot/vmlinuz-$kver"; do [ -f "$k" ] && kernel="$k" && break; done
  [ -n "$kernel" ] || die "no vmlinuz for $kver in $ROOT$K"
  cp "$kernel" "$GUEST/vmlinuz"
  cp "$ROOT$K/lib/modules/$kver/config" "$GUEST/config" 2>/dev/null || true
  echo "$kver" >"$GUEST/kernel-version"
  cp "$ROOT/bin/busybox" "$GUEST/base/bin/busybox"
  # modules, in dependency order, decompressed (busybox insmod takes plain .ko files)
  : >"$GUEST/base/lib/modules/load-order"
  for m in $MODULES; do
    in_chroot modprobe -d "$K" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
  done | awk '!seen[$0]++' | while read -r path; do
    name="$(basename "$path")"; plain="${name%.xz}"; plain="${plain%.zst}"; plain="${plain%.gz}"
    case "$name" in
      *.xz) xz -dc "$ROOT$path" ;;
      *.zst) zstd -qdc "$ROOT$path" ;;
      *.gz) gzip -dc "$ROOT$path" ;;
      *) cat "$ROOT$path" ;;
    esac >"$GUEST/base/lib/modules/$plain"
    echo "$plain" >>"$GUEST/base/lib/modules/load-order"
  done
  [ -s "$GUEST/base/lib/modules/load-order" ] || die "no modules found for: $MODULES"
  # libgpiod's tools and lspci with their shared libraries (the guest checks use them)
  for tool in gpiodetect gpioinfo gpioget gpioset lspci; do
    bin="$(in_chroot sh -c "command -v $tool")" || die "$tool missing in the chroot"
    cp "$ROOT$bin" "$GUEST/base/usr/bin/$tool"
    in_chroot ldd "$bin" | awk '/=>/ { print $3 } /^\t\/lib|^\t\/usr/ { print $1 }' | while read -r lib; do
      [ -n "$lib" ] || continue
      mkdir -p "$GUEST/base$(dirname "$lib")"
      cp -L "$ROOT$lib" "$GUEST/base$lib"
    done
  done
  # the dynamic loader at its canonical path
  mkdir -p "$GUEST/base/lib64"
  cp -L "$ROOT/lib64/ld-linux-x86-64.so.2" "$GUEST/base/lib64/"
  [ -f "$ROOT/usr/share/misc/pci.ids" ] && mkdir -p "$GUEST/base/usr/share/misc" \
    && cp "$ROOT/usr/share/misc/pci.ids" "$GUEST/base/usr/share/misc/"
  touch "$GUEST/.vfu-guest-done"
fi
log "ready: $CACHE (kernel $(cat "$GUEST/kernel-version"))"
