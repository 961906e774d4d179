#!/usr/bin/env bash
# Real-guest interop: QEMU 11's vfio-user client (device vfio-user-pci) boots a stock Debian kernel whose
# busybox /init (guest-init.sh) checks our devices, served by ./vfu on a UNIX socket.
#
#   interop/qemu/run.sh [--check NAME]... [--fault] [--keep-logs]
#
# Checks (default: all of them):
#   gpio        vfu serve gpio-pci-idio-16: ids, BARs, config space; the stock gpio-pci-idio-16 driver binds
#               (INTx), 32 GPIO lines, inputs read as the device model says, outputs toggle and read back
#   gpio-fault  the same guest against the device with VFU_FAULT=bar-read (every trapped BAR read fails):
#               passes only if the guest reports FAIL, i.e. proves the gpio check can fail
#   sample      vfu sample-server (libvfio-user's sample device): ids, BARs, config space
#   demo        vfu serve demo: ids, capabilities, BARs, register and BAR2 memory access
# --fault       serve every device of our own (gpio, demo) with VFU_FAULT=bar-read and expect PASS anyway:
#               the run must then report FAIL (a manual demonstration of the negative case)
# --keep-logs   keep the log directory also when everything passed
#
# The first run prepares a Debian sid chroot with QEMU 11 and the guest kernel in $VFU_QEMU_CACHE
# (default /var/cache/vfu-qemu; a few hundred MB of downloads, see prepare.sh). Needs root.
# Prints one line per check (PASS/FAIL) and a summary; exit 0 only if every check passed.
# Environment: VFU_QEMU_CACHE, VFU_QEMU_MIRROR (prepare.sh), VFU_QEMU_TIMEOUT (seconds per boot, default 120),
# VFU_QEMU_APPEND (more guest kernel parameters, e.g. loglevel=7), VFU_QEMU_MEM (guest RAM, default 256M),
# VFU_QEMU_JOBS (checks run at once, default 2), VFU_SAMPLE_BAR1 (default 0x4000).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE="${VFU_QEMU_CACHE:-/var/cache/vfu-qemu}"
ROOT="$CACHE/chroot"
GUEST="$CACHE/guest"
BOOT_TIMEOUT="${VFU_QEMU_TIMEOUT:-120}"
JOBS="${VFU_QEMU_JOBS:-2}"
ALL_CHECKS="gpio gpio-fault sample demo"
# BAR1 of the sample device: QEMU needs power-of-two BAR sizes (the sample's historic 0x3000 is not)
SAMPLE_BAR1="${VFU_SAMPLE_BAR1:-0x4000}"

checks=""
fault=""
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) checks="$checks ${2:?--check needs a name}"; shift 2 ;;
    --check=*) checks="$checks ${1#--check=}"; shift ;;
    --fault) fault=bar-read; shift ;;
    --keep-logs) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
checks="${checks:-$ALL_CHECKS}"
for c in $checks; do
  case " $ALL_CHECKS " in *" $c "*) ;; *) echo "run.sh: unknown check '$c' (known: $ALL_CHECKS)" >&2; exit 2 ;; esac
done

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (chroot, mount namespace)" >&2; exit 2; }
"$here/prepare.sh"
# build vfu now, not while a check waits for its server
"$repo/vfu" --help >/dev/null 2>"$CACHE/vfu-build.log" \
  || { tail -20 "$CACHE/vfu-build.log" >&2; echo "run.sh: building vfu failed" >&2; exit 1; }

mkdir -p "$ROOT/tmp"
RUN="$(mktemp -d "$ROOT/tmp/vfu-run.XXXXXX")"   # inside the chroot: QEMU reaches the sockets as /tmp/...
RUN_IN="${RUN#"$ROOT"}"
server_pid=""
qemu_pid=""
stop() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  qemu_pid=""; server_pid=""
  return 0
}
pids=()
stop_all() { # the main shell: end the running checks (each stops its own server and QEMU)
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all' EXIT
trap 'stop_all; echo "interop-qemu: interrupted; logs: $RUN" >&2; exit 130' INT TERM

# --- the guest: kernel and initramfs (the cached base + /init from this repository) ---
cp "$GUEST/vmlinuz" "$RUN/vmlinuz"
mkdir -p "$RUN/initrd"
cp -a "$GUEST/base/." "$RUN/initrd/"
install -m 0755 "$here/guest-init.sh" "$RUN/initrd/init"
chroot "$ROOT" sh -c "cd '$RUN_IN/initrd' && find . | cpio -o -H newc --quiet | gzip -1" >"$RUN/initrd.gz"
rm -rf "$RUN/initrd"

# serve NAME SOCKET LOG [FAULT]: starts the device server for check NAME, waits for its socket
serve() {
  local name="$1" sock="$2" log="$3" f="${4:-}"
  case "$name" in
    gpio*) VFU_FAULT="$f" "$repo/vfu" serve gpio-pci-idio-16 --socket "$sock" >"$log" 2>&1 & ;;
    demo) VFU_FAULT="$f" "$repo/vfu" serve demo --socket "$sock" >"$log" 2>&1 & ;;
    sample) "$repo/vfu" sample-server --bar1-size "$SAMPLE_BAR1" "$sock" >"$log" 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 1 600); do
    [ -S "$sock" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || { echo "server exited: $(tail -3 "$log")" >&2; return 1; }
    sleep 0.1
  done
  echo "server did not create $sock within 60 s" >&2
  return 1
}

# boot NAME SOCKET CONSOLE EXTRA-CMDLINE: QEMU in the chroot, in its own mount namespace (the /proc and
# /dev mounts vanish with it), bounded by a timeout
boot() {
  local name="$1" sock_in="$2" console="$3" extra="$4"
  local dev
  dev="{\"driver\":\"vfio-user-pci\",\"bus\":\"pcie.0\",\"addr\":\"0x10\",\"socket\":{\"type\":\"unix\",\"path\":\"$sock_in\"}}"
  timeout -k 5 "$BOOT_TIMEOUT" unshare -m -- sh -c \
    'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"' "$ROOT" \
    qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot -no-user-config \
      -object memory-backend-memfd,id=mem,size=${VFU_QEMU_MEM:-256M},share=on -machine q35,memory-backend=mem -m ${VFU_QEMU_MEM:-256M} \
      -smp 1 -serial stdio -monitor none \
      -kernel "$RUN_IN/vmlinuz" -initrd "$RUN_IN/initrd.gz" \
      -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off vfu.check=${name%-fault} $extra ${VFU_QEMU_APPEND:-}" \
      -device "$dev" \
      </dev/null >"$console" 2>&1 &
  qemu_pid=$!
  local rc=0
  wait "$qemu_pid" || rc=$?
  qemu_pid=""
  return "$rc"
}

# the expected device model, handed to the guest on the kernel command line
extra_for() {
  case "$1" in
    sample) echo "vfu.sample_bar1=$SAMPLE_BAR1" ;;
    *) echo "" ;;
  esac
}

# run_check NAME: one check with its own server and QEMU; prints its line and leaves it in $RUN/NAME.result
run_check() {
  local c="$1" start=$SECONDS
  local sock="$RUN/$c.sock" slog="$RUN/$c.server.log" console="$RUN/$c.console.log"
  local f="$fault" verdict=FAIL why="" qrc guest line
  trap 'stop' EXIT
  trap 'stop; exit 143' INT TERM
  [ "$c" = gpio-fault ] && f=bar-read
  [ "$c" = sample ] && f=""
  if [ "$c" = sample ] && ! "$repo/vfu" help sample-server >/dev/null 2>&1; then
    line="SKIP sample      (this vfu has no sample-server command)"
    echo "$line"; echo "$line" >"$RUN/$c.result"; return 0
  fi
  if serve "$c" "$sock" "$slog" "$f" 2>>"$RUN/$c.run.log"; then
    qrc=0
    boot "$c" "${sock#"$ROOT"}" "$console" "$(extra_for "$c")" || qrc=$?
    guest=NONE
    if grep -q '^VFU-RESULT PASS' "$console"; then guest=PASS; fi
    if grep -q '^VFU-RESULT FAIL' "$console"; then guest=FAIL; fi
    if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then why="QEMU timed out after ${BOOT_TIMEOUT}s; "; fi
    if [ "$guest" = NONE ]; then why="${why}no VFU-RESULT line from the guest (QEMU exit $qrc)"; fi
    if [ "$c" = gpio-fault ]; then
      # the fault must be seen: the guest reports FAIL, and a register read is among the failures
      if [ "$guest" = FAIL ] && grep -q -e '^VFU-CHECK FAIL: inputs' -e '^VFU-CHECK FAIL: BAR2' "$console"; then
        verdict=PASS; why="guest reported FAIL as expected: $(grep -c '^VFU-CHECK FAIL' "$console") checks failed"
      elif [ "$guest" = PASS ]; then
        why="the guest PASSED although every BAR read failed: the check cannot fail"
      else
        why="${why:-guest FAIL without the expected input-read failure}"
      fi
    elif [ "$guest" = PASS ]; then
      verdict=PASS; why="$(grep '^VFU-CHECKS' "$console" | tr -d '\r')"
    elif [ "$guest" = FAIL ]; then
      why="$(grep '^VFU-CHECK FAIL' "$console" | tr -d '\r' | head -5 | sed 's/^VFU-CHECK FAIL: //' | paste -sd';' -)"
    fi
  else
    why="device server did not start: $(tail -2 "$RUN/$c.run.log" | paste -sd' ' -)"
  fi
  stop
  line="$(printf '%-4s %-10s (%ss) %s' "$verdict" "$c" $((SECONDS - start)) "$why")"
  echo "$line"
  echo "$line" >"$RUN/$c.result"
}

# the checks, JOBS at a time (each boot is one TCG thread; the device servers are light)
pids=()
for c in $checks; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_check "$c" &
  pids+=($!)
done
wait "${pids[@]}" 2>/dev/null || true
pids=()
results=()
failed=0
for c in $checks; do
  line="$(cat "$RUN/$c.result" 2>/dev/null || echo "FAIL $c (no result)")"
  results+=("$line")
  case "$line" in PASS*|SKIP*) ;; *) failed=$((failed + 1)) ;; esac
done

echo "---"
if [ "$failed" = 0 ]; then
  printf '%s\n' "${results[@]}" | grep -q '^SKIP' && echo "interop-qemu: note: some checks were skipped"
  echo "interop-qemu: PASS (${#results[@]} checks)"
  [ -n "$keep" ] && echo "logs: $RUN" || rm -rf "$RUN"
  exit 0
fi
echo "interop-qemu: FAIL ($failed of ${#results[@]} checks failed); logs: $RUN"
exit 1
