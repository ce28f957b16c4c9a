#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Checks that boot the bundled Linux kernel; run on a KVM that passes hv-kvm's probe.
set -euo pipefail
# Every run gets a guest deadline, so a guest that hangs fails its check
# instead of the suite, and a process deadline above it, after which
# run_capture shows where smcore waits. -v logs the steps of each run.
#
# Guests inside the emulated testbed have now and then hung, spinning in
# the guest kernel with interrupts off (docs/testbed.md). A run that times
# out is therefore run once more. Its first output goes to standard error,
# and a hang that repeats still fails its check.
smcore_binary=$1
smcore() {
	local first status=0

	first=$(mktemp)
	"$smcore_binary" -v --set run.timeout=90 "$@" >"$first" || status=$?
	if [ "$status" -eq 124 ]; then
		{
			echo "guest_checks: the guest timed out; its output was:"
			cat "$first"
			echo "guest_checks: running it once more"
		} >&2
		rm -f "$first"
		"$smcore_binary" -v --set run.timeout=90 "$@"
		return
	fi
	cat "$first"
	rm -f "$first"
	return "$status"
}
RUN_DEADLINE=240
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/lib.sh"
cd "$root"
hello=configs/hello.ini
data_dir=$(dirname "$smcore_binary")/../share/smcore
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_capture "hello" smcore --config "$hello"
check "hello exits 0" [ "$status" -eq 0 ]
check "hello prints the guest kernel release" contains "$out" "guest kernel: 6.1."
check "hello prints the greeting" contains "$out" "Hello from an smcore microVM!"

run_capture "exit 7" smcore --config "$hello" -- /bin/busybox sh -c 'echo before; exit 7'
check "exit status 7 becomes smcore's" [ "$status" -eq 7 ]
check "output before the exit arrives" contains "$out" "before"

run_capture "signal" smcore --config "$hello" -- /bin/busybox sh -c 'kill -9 $$'
check "death by SIGKILL becomes 137" [ "$status" -eq 137 ]

run_capture "missing program" smcore --config "$hello" -- /no/such/program
check "a missing program exits 127" [ "$status" -eq 127 ]
check "a missing program is named" contains "$out$err" "/no/such/program"

run_capture "arguments" smcore --config "$hello" -- /bin/busybox printf '[%s]' 'a b' "c'd" '$x' ''
check "arguments pass unchanged" [ "$out" = "[a b][c'd][\$x][]" ]

run_capture "env and cwd" smcore --config "$hello" --set 'run.env=GREETING="hi there"' \
	--set run.cwd=/tmp -- /bin/busybox sh -c 'echo "$GREETING in $(pwd)"'
check "env and cwd reach the workload" contains "$out" "hi there in /tmp"

run_capture "two vCPUs" smcore --config "$hello" --set machine.vcpus=2 -- /bin/busybox nproc
check "two vCPUs boot" [ "$status" -eq 0 ]
check "the guest sees two CPUs" [ "$(echo "$out" | tr -d '\r' | tail -n 1)" = "2" ]

run_capture "stdin" smcore --config "$hello" -- /bin/busybox sh -c 'cat; echo "cat done"' <<<"host input"
check "a workload reading stdin gets end-of-file" [ "$status" -eq 0 ]
check "the workload goes on after end-of-file" contains "$out" "cat done"

run_capture "five vCPUs" smcore --config "$hello" --set machine.vcpus=5 -- /bin/busybox nproc
check "five vCPUs boot and stop cleanly" [ "$status" -eq 0 ]
check "the guest sees five CPUs" [ "$(echo "$out" | tail -n 1)" = "5" ]

start=$(date +%s)
run_capture "power-off" smcore --config "$hello" -- /bin/busybox poweroff -f
check "a guest power-off ends the run with exit 1" [ "$status" -eq 1 ]
check "a guest power-off is explained" contains "$err" "every vCPU halted with interrupts disabled"
check "a guest power-off does not wait for the run timeout" [ $(( $(date +%s) - start )) -lt 100 ]

run_capture "power-off with two vCPUs" smcore --config "$hello" --set machine.vcpus=2 -- /bin/busybox poweroff -f
check "a two-vCPU power-off ends the run with exit 1" [ "$status" -eq 1 ]

run_capture "console file" smcore --config "$hello" --set "machine.console=$work/console.log"
check "console file run exits 0" [ "$status" -eq 0 ]
check "console output goes to the file" grep -q "Hello from an smcore microVM!" "$work/console.log"
check "nothing on stdout with a console file" [ -z "$out" ]

if [ -f "$data_dir/bzImage" ]; then
	run_capture "bzImage" smcore --config "$hello" --set "kernel.kernel=$(realpath "$data_dir/bzImage")"
	check "the bzImage boots too" [ "$status" -eq 0 ]
	check "the bzImage prints the greeting" contains "$out" "Hello from an smcore microVM!"
fi

run_capture "baseline template" smcore --config "$hello" --set machine.cpu_template=baseline
check "the baseline CPU template boots" [ "$status" -eq 0 ]

# The Debian 12 OCI image that guest_boot.sh prepared (tests/images/debian-oci).
debian=configs/debian.ini
image=$(sed -n 's/^image = //p' "$debian")
if [ "${SMCORE_TEST_DEBIAN:-}" = skip ]; then
	echo "SKIP: the Debian image checks: guest_boot.sh could not build $image (it needs root)" >&2
	finish
	exit
fi

run_capture "debian version" smcore --config "$debian" -- cat /etc/debian_version
check "the Debian image runs a command after --" [ "$status" -eq 0 ]
check "it prints Debian's version from the image" matches "$(echo "$out" | tr -d '\r' | tail -n 1)" '^12\.[0-9]+$'

run_capture "debian default command" smcore --config "$debian"
check "the image's own command runs without --" [ "$status" -eq 0 ]
check "it prints the image's os-release" contains "$out" 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'

run_capture "debian root is read-only below, writable above" smcore --config "$debian" -- \
	sh -c 'echo changed > /etc/motd && cat /etc/motd && grep " / overlay " /proc/mounts | cut -d" " -f1-3 && id -un'
check "the root overlay takes writes" [ "$status" -eq 0 ]
check "a write to the root lands in the overlay" contains "$out" "changed"
check "the root is an overlay" contains "$out" "overlay / overlay"
check "the workload runs as root by default" [ "$(echo "$out" | tr -d '\r' | tail -n 1)" = root ]

# A second, writable disk with an ext4 file system: written and synced in
# the guest, then read back there and checked here.
truncate -s 64M "$work/data.img"
mke2fs -q -F -t ext4 "$work/data.img"
printf '[machine]\nmemory = 512M\n\n[rootfs]\nimage = %s\n\n[device.data]\nplugin = dev-blk\npath = data.img\nserial = data-disk\n' \
	"$image" >"$work/two-disks.ini"
run_capture "second disk" smcore --config "$work/two-disks.ini" -- sh -c \
	'mount /dev/vdb /mnt && echo "written in the guest" > /mnt/note && sync && umount /mnt &&
	 mount -o ro /dev/vdb /mnt && cat /mnt/note && cat /sys/block/vdb/serial'
check "the second disk run exits 0" [ "$status" -eq 0 ]
check "the guest reads back what it wrote" contains "$out" "written in the guest"
check "the second disk has its serial" contains "$out" "data-disk"
check "the file is in the image on the host" [ "$(debugfs -R 'cat /note' "$work/data.img" 2>/dev/null)" = "written in the guest" ]

printf '[machine]\nmemory = 512M\n\n[rootfs]\nimage = %s\n\n[device.data]\nplugin = dev-blk\npath = data.img\nreadonly = true\n' \
	"$image" >"$work/readonly.ini"
run_capture "read-only disk" smcore --config "$work/readonly.ini" -- sh -c \
	'cat /sys/block/vdb/ro; mount -w /dev/vdb /mnt 2>/dev/null && echo "mounted read-write";
	 mount -o ro /dev/vdb /mnt && cat /mnt/note'
check "a read-only disk shows as read-only" [ "$(echo "$out" | tr -d '\r' | head -n 1)" = 1 ]
check "a read-only disk cannot be mounted read-write" lacks "$out" "mounted read-write"
check "a read-only disk still reads" contains "$out" "written in the guest"

finish
