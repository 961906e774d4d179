#!/bin/busybox sh
# /init of the interop guest (packed into the initramfs by run.sh; runs as PID 1 under busybox).
#
# Kernel command line: vfu.check=NAME (gpio | sample | demo) selects the device under test, expected at
# PCI address vfu.bdf= (default 0000:00:10.0, QEMU's -device ...,"bus":"pcie.0","addr":"0x10").
# Every check prints "VFU-CHECK ok: WHAT" or "VFU-CHECK FAIL: WHAT"; the last line is
# "VFU-RESULT PASS" (no check failed) or "VFU-RESULT FAIL". Then the guest powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

FAILED=0
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); echo "VFU-CHECK ok: $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILED=$((FAILED + 1)); echo "VFU-CHECK FAIL: $*"; }
# expect WHAT ACTUAL EXPECTED
expect() {
  if [ "$2" = "$3" ]; then ok "$1 = $3"; else fail "$1 = $2, expected $3"; fi
}
finish() {
  echo "VFU-CHECKS $CHECKS, failed $FAILED (guest up $(cut -d" " -f1 /proc/uptime) s)"
  if [ "$FAILED" = 0 ] && [ "$CHECKS" -gt 0 ]; then echo "VFU-RESULT PASS"; else echo "VFU-RESULT FAIL"; fi
  sync
  poweroff -f
  sleep 5
  echo o >/proc/sysrq-trigger
}

arg() { # arg NAME DEFAULT: value of NAME= on the kernel command line
  for w in $(cat /proc/cmdline); do
    case "$w" in "$1"=*) echo "${w#*=}"; return ;; esac
  done
  echo "$2"
}
CHECK="$(arg vfu.check none)"
BDF="$(arg vfu.bdf 0000:00:10.0)"
DEV="/sys/bus/pci/devices/$BDF"

# ---- config space helpers (the sysfs config file: what the guest kernel reads from the device) ----
cfg() { # cfg OFFSET SIZE: the little-endian value, as 0x and 2*SIZE hex digits
  set -- $(od -An -tx1 -j "$(($1))" -N "$2" "$DEV/config")
  r=""; for b in "$@"; do r="$b$r"; done
  echo "0x$r"
}
hex() { printf "0x%0${2:-4}x" "$(($1))"; }

# ---- BARs (as the guest kernel assigned them) ----
bar_start() { sed -n "$(($1 + 1))p" "$DEV/resource" | awk '{ print $1 }'; }
bar_size() {
  set -- $(sed -n "$(($1 + 1))p" "$DEV/resource")
  if [ "$(($1))" = 0 ] && [ "$(($2))" = 0 ]; then echo 0; else printf '0x%x' $(($2 - $1 + 1)); fi
}
bar_kind() { # io | mem32 | mem64 | mem32-pref | mem64-pref | none
  set -- $(sed -n "$(($1 + 1))p" "$DEV/resource")
  f=$(($3))
  if [ $((f & 0x100)) != 0 ]; then echo io
  elif [ $((f & 0x200)) != 0 ]; then
    k=mem32; [ $((f & 0x100000)) != 0 ] && k=mem64; [ $((f & 0x2000)) != 0 ] && k="$k-pref"; echo "$k"
  else echo none; fi
}
# expect_bar N KIND SIZE
expect_bar() {
  expect "BAR$1 kind" "$(bar_kind "$1")" "$2"
  expect "BAR$1 size" "$(bar_size "$1")" "$3"
  if [ "$2" != none ]; then
    if [ "$(($(bar_start "$1")))" != 0 ]; then ok "BAR$1 assigned at $(bar_start "$1")"; else fail "BAR$1 not assigned"; fi
  fi
}

# ---- register access to a BAR (I/O: the sysfs resource file; memory: devmem) ----
bar_read8() { # bar_read8 BAR OFFSET
  if [ "$(bar_kind "$1")" = io ]; then
    dd if="$DEV/resource$1" bs=1 skip="$(($2))" count=1 2>/dev/null | od -An -tx1 | tr -d ' \n' | sed 's/^/0x/'
  else
    printf '0x%02x' "$(devmem $(($(bar_start "$1") + $2)) 8)"
  fi
}

# ---- common identity and config-space checks ----
# common VENDOR DEVICE SUBVENDOR SUBDEVICE CLASS(24-bit) REVISION PIN
common() {
  echo "--- PCI devices"
  lspci -nn 2>/dev/null || ls /sys/bus/pci/devices
  if [ ! -d "$DEV" ]; then fail "no PCI device at $BDF"; return 1; fi
  ok "device present at $BDF"
  echo "--- $BDF"
  lspci -vvv -nn -s "${BDF#0000:}" 2>/dev/null
  echo "--- config space (first 256 bytes)"
  od -Ax -tx1 -N 256 "$DEV/config"
  expect "sysfs vendor" "$(cat "$DEV/vendor")" "$(hex "$1")"
  expect "sysfs device" "$(cat "$DEV/device")" "$(hex "$2")"
  expect "sysfs subsystem_vendor" "$(cat "$DEV/subsystem_vendor")" "$(hex "$3")"
  expect "sysfs subsystem_device" "$(cat "$DEV/subsystem_device")" "$(hex "$4")"
  expect "sysfs class" "$(cat "$DEV/class")" "$(hex "$5" 6)"
  expect "sysfs revision" "$(cat "$DEV/revision")" "$(printf '0x%02x' "$6")"
  expect "config 0x00 vendor:device" "$(cfg 0 4)" "$(printf '0x%04x%04x' "$2" "$1")"
  expect "config 0x2c subsystem" "$(cfg 0x2c 4)" "$(printf '0x%04x%04x' "$4" "$3")"
  expect "config 0x08 class:revision" "$(cfg 8 4)" "$(printf '0x%06x%02x' "$5" "$6")"
  expect "config 0x0e header type" "$(cfg 0x0e 1)" "0x00"
  expect "config 0x3d interrupt pin" "$(cfg 0x3d 1)" "$(printf '0x%02x' "$7")"
}

# capabilities: the IDs of the standard capability list, space separated (walks config space)
cap_ids() {
  if [ $(($(cfg 6 2) & 0x10)) = 0 ]; then echo ""; return; fi
  p=$(($(cfg 0x34 1) & 0xfc)); ids=""; n=0
  while [ "$p" != 0 ] && [ $n -lt 48 ]; do
    ids="$ids $(cfg "$p" 1)"; p=$(($(cfg $((p + 1)) 1) & 0xfc)); n=$((n + 1))
  done
  echo "${ids# }"
}

# ---------------------------------------------------------------------------------------------------
# gpio-pci-idio-16 (io.vfu.devices.GpioPciIdio16Device, the libvfio-user sample's model) with the stock
# gpio-pci-idio-16 driver. The driver (gpio-idio-16) maps lines 0-15 to outputs OUT0-15 (BAR2 0x0 bits 0-7,
# 0x4 bits 0-7) and lines 16-31 to inputs IIN0-15 (BAR2 0x1, 0x5). The device model: a write at 0x0/0x4
# pulses the pins whose bits are set (counter[pin]++); input bit i reads 1 iff counter[i] % 3 == 0, so all
# inputs read 1 at first and IIN0 follows OUT0's pulses 0,1,2,3 as 1,0,0,1; reads elsewhere return 0.
inputs_driver() { # the 16 input lines through the driver (one line request), as 0x%04x
  set -- $(gpioget -a -c "$chip" --numeric $(seq 16 31) 2>/dev/null)
  [ $# = 16 ] || { echo "error"; return; }
  got=0; i=0
  for v in "$@"; do [ "$v" = 1 ] && got=$((got | (1 << i))); i=$((i + 1)); done
  printf '0x%04x' "$got"
}
inputs_raw() { printf '0x%04x' $(( $(bar_read8 2 1) | ($(bar_read8 2 5) << 8) )); }
set_out() { # set_out LINE VALUE
  gpioset -c "$chip" -t 0 "$1=$2" 2>/tmp/gpioset.err || fail "gpioset $1=$2: $(cat /tmp/gpioset.err)"
}
check_gpio() {
  common 0x494f 0x0dc8 0x0000 0x0000 0x000000 0 1 || return
  expect "capabilities" "$(cap_ids)" ""
  expect_bar 2 io 0x100
  for i in 0 1 3 4 5; do expect "BAR$i size" "$(bar_size $i)" 0; done
  echo "--- loading the stock driver"
  for m in $(cat /lib/modules/load-order); do
    if insmod "/lib/modules/$m" 2>/tmp/insmod.err; then ok "insmod $m"
    else fail "insmod $m: $(cat /tmp/insmod.err)"; fi
  done
  for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e "$DEV/driver" ] && break; sleep 0.2; done
  dmesg | grep -i -e idio -e "$BDF" | tail -20
  drv="$(basename "$(readlink "$DEV/driver" 2>/dev/null)" 2>/dev/null)"
  expect "driver bound to $BDF" "$drv" "pci-idio-16"
  irq="$(cat "$DEV/irq")"
  if [ "$irq" != 0 ] && grep "^ *$irq:" /proc/interrupts | grep -q -e idio -e "$BDF"; then
    ok "INTx handler registered: $(grep "^ *$irq:" /proc/interrupts | tr -s ' ')"
  else
    fail "no handler for the device's irq $irq in /proc/interrupts"; cat /proc/interrupts
  fi
  if [ $(( $(cfg 4 2) & 1 )) != 0 ]; then ok "config command $(cfg 4 2): I/O decoding enabled by the driver"
  else fail "config command $(cfg 4 2): I/O decoding not enabled"; fi
  echo "--- GPIO"
  gpiodetect
  chip="$(gpiodetect | awk -v l="[$BDF]" '$2 == l { print $1; exit }')"
  if [ -z "$chip" ]; then fail "no gpiochip for the device"; return; fi
  ok "gpiochip $chip"
  expect "$chip lines" "$(gpiodetect | awk -v c="$chip" '$1 == c { gsub(/[()]/, "", $(NF-1)); print $(NF-1) }')" 32
  gpioinfo -c "$chip"
  expect "line 0" "$(gpioinfo -c "$chip" | awk '$1 == "line" && $2 == "0:" { print $3, $4 }')" '"OUT0" output'
  expect "line 15" "$(gpioinfo -c "$chip" | awk '$1 == "line" && $2 == "15:" { print $3, $4 }')" '"OUT15" output'
  expect "line 16" "$(gpioinfo -c "$chip" | awk '$1 == "line" && $2 == "16:" { print $3, $4 }')" '"IIN0" input'
  expect "line 31" "$(gpioinfo -c "$chip" | awk '$1 == "line" && $2 == "31:" { print $3, $4 }')" '"IIN15" input'
  # inputs before any pulse: all counters 0, all inputs 1
  expect "inputs IIN0-15 via the driver" "$(inputs_driver)" 0xffff
  expect "inputs IIN0-15 raw (BAR2 0x1, 0x5)" "$(inputs_raw)" 0xffff
  expect "BAR2 0x0 reads 0 (write-only outputs)" "$(bar_read8 2 0)" 0x00
  # OUT0 toggled: pulses 1, 2, 3 on pin 0 make IIN0 read 0, 0, 1; the other inputs stay 1
  set_out 0 1; expect "inputs after OUT0 1st pulse" "$(inputs_driver)" 0xfffe
  set_out 0 0; expect "inputs after OUT0 low" "$(inputs_driver)" 0xfffe
  set_out 0 1; expect "inputs after OUT0 2nd pulse" "$(inputs_driver)" 0xfffe
  set_out 0 0; set_out 0 1; expect "inputs after OUT0 3rd pulse" "$(inputs_driver)" 0xffff
  set_out 0 0
  # OUT9 (register 0x4 bit 1) pulses pin 9: IIN9 reads 0
  set_out 9 1; expect "inputs after OUT9 pulse" "$(inputs_driver)" 0xfdff
  expect "inputs raw after OUT9 pulse" "$(inputs_raw)" 0xfdff
  set_out 9 0
}

# ---------------------------------------------------------------------------------------------------
# libvfio-user's sample device as vfu sample-server serves it (io.vfu.devices.SampleServerDevice):
# conventional PCI, no capabilities, BAR0 8 bytes (decoding 16) and BAR1 vfu.sample_bar1 bytes, both 32-bit memory;
# INTx pin A; no driver binds. BAR0 reads now - bar0 (seconds since the epoch while bar0 is 0); BAR1 is memory.
check_sample() {
  common 0xdead 0xbeef 0xcafe 0xbabe 0x000000 0 1 || return
  expect "capabilities" "$(cap_ids)" ""
  expect "config 0x06 status cap-list bit" "$(( $(cfg 6 2) & 0x10 ))" 0
  expect_bar 0 mem32 0x10   # the 8-byte region: 16 bytes is the smallest memory BAR
  expect_bar 1 mem32 "$(printf '0x%x' $((VFU_SAMPLE_BAR1)))"
  for i in 2 3 4 5; do expect "BAR$i size" "$(bar_size $i)" 0; done
  expect "driver" "$(basename "$(readlink "$DEV/driver" 2>/dev/null)" 2>/dev/null)" ""
  cmd=$(( $(cfg 4 2) ))
  printf "\\x$(printf %02x $(((cmd | 2) & 0xff)))" | dd of="$DEV/config" bs=1 seek=4 count=1 conv=notrunc 2>/dev/null
  b0=$(bar_start 0); b1=$(bar_start 1)
  now=$(date +%s)
  t=$(devmem "$b0" 64)
  if [ $((t)) -ge $((now - 86400)) ] && [ $((t)) -le $((now + 86400)) ]; then ok "BAR0 reads now - 0 = $((t)) (guest clock $now)"
  else fail "BAR0 reads $((t)), expected about $now"; fi
  devmem $((b1 + 0x10)) 32 0x5a5aa5a5
  expect "BAR1 memory after write" "$(printf '0x%08x' "$(devmem $((b1 + 0x10)) 32)")" 0x5a5aa5a5
  last=$(( $(printf '%d' "$VFU_SAMPLE_BAR1") - 8 ))
  devmem $((b1 + last)) 32 0x01020304
  expect "BAR1 last page after write" "$(printf '0x%08x' "$(devmem $((b1 + last)) 32)")" 0x01020304
}

# ---------------------------------------------------------------------------------------------------
# vfu's demo device (io.vfu.devices.DemoDevice): PCIe endpoint, BAR0 registers, BAR2 1 MiB 64-bit
# prefetchable, BAR4 MSI-X; the ID register reads 0x56460001.
check_demo() {
  common 0x5646 0x0001 0x5646 0x0001 0xff0000 1 1 || return
  expect "capabilities (PM, MSI-X, Express)" "$(cap_ids)" "0x01 0x11 0x10"
  expect "extended capability 0x100 (DSN)" "$(( $(cfg 0x100 4) & 0xffff ))" 3
  expect "DSN low" "$(cfg 0x104 4)" "0x89abcdef"
  expect_bar 0 mem32 0x1000
  expect_bar 2 mem64-pref 0x100000
  expect_bar 4 mem32 0x1000
  setpci_cmd=$(( $(cfg 4 2) ))
  # enable memory decoding to read the registers (no driver binds the demo device)
  printf "\\x$(printf %02x $(((setpci_cmd | 2) & 0xff)))" | dd of="$DEV/config" bs=1 seek=4 count=1 conv=notrunc 2>/dev/null
  id=$(devmem $(($(bar_start 0) + 0)) 32)
  expect "BAR0 ID register" "$(printf '0x%08x' "$id")" 0x56460001
  devmem $(($(bar_start 0) + 8)) 32 0x12345678
  expect "BAR0 SCRATCH0 after write" "$(printf '0x%08x' "$(devmem $(($(bar_start 0) + 8)) 32)")" 0x12345678
  devmem $(($(bar_start 2) + 0x100)) 32 0xcafef00d
  expect "BAR2 memory after write" "$(printf '0x%08x' "$(devmem $(($(bar_start 2) + 0x100)) 32)")" 0xcafef00d
}

echo "=== vfu interop guest: check '$CHECK' at $BDF (kernel $(uname -r), up $(cut -d" " -f1 /proc/uptime) s)"
VFU_SAMPLE_BAR1="$(arg vfu.sample_bar1 0x4000)"
case "$CHECK" in
  gpio) check_gpio ;;
  sample) check_sample ;;
  demo) check_demo ;;
  *) fail "unknown check '$CHECK'" ;;
esac
finish
