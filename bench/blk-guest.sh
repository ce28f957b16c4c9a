#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The workload of bench/blk, run in the guest's Debian root by /bin/sh
# (dash), the same under both VMMs:
#
#   sh blk-guest.sh run|idle RANDOM_READS
#
# "run" reads the whole data disk /dev/vdb sequentially with dd and
# O_DIRECT, then makes RANDOM_READS random 4 KiB O_DIRECT reads with
# blk-rand (next to this script). "idle" does no I/O, for a baseline of the
# VMM's CPU time. Both end with one line that bench/blk-runs parses:
#
#   blk-result mode=run seq_bytes=N seq_ns=N rand_reads=N rand_ns=N vdb_reads=N vdb_sectors=N clocksource=NAME
#
# vdb_reads and vdb_sectors are fields 1 and 3 of /sys/block/vdb/stat after
# the workload: the reads the disk completed and the 512-byte sectors they
# read. The script exits non-zero, with a message, when /dev/vdb is not the
# data disk or a step fails.

set -eu

here=$(dirname "$0")
mode=${1:-}
random_reads=${2:-}
data_serial=bench-data

fail() {
	echo "blk-guest: $*" >&2
	exit 1
}

case $mode in
run | idle) ;;
*) fail "usage: blk-guest.sh run|idle RANDOM_READS" ;;
esac

# Both VMMs must give the data disk the same name, or the numbers would
# belong to another disk.
serial=$(cat /sys/block/vdb/serial 2>/dev/null || true)
[ "$serial" = "$data_serial" ] ||
	fail "/dev/vdb has serial '$serial', not '$data_serial'; the disks are in another order"

echo "blk-guest: $mode: /dev/vdb is the data disk"

seq_bytes=0
seq_ns=0
rand_out="rand_reads=0 rand_ns=0"
# Progress lines show where a run that never ends stopped.
if [ "$mode" = run ]; then
	echo "blk-guest: reading /dev/vdb sequentially"
	start=$(date +%s%N)
	dd if=/dev/vdb of=/dev/null bs=1M iflag=direct 2>"$here/dd.err" ||
		fail "dd failed: $(cat "$here/dd.err")"
	end=$(date +%s%N)
	seq_bytes=$(($(cat /sys/block/vdb/size) * 512))
	seq_ns=$((end - start))
	echo "blk-guest: $random_reads random reads"
	rand_out=$("$here/blk-rand" /dev/vdb "$random_reads") || fail "blk-rand failed"
fi

read -r vdb_reads _ vdb_sectors _ </sys/block/vdb/stat
clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
echo "blk-result mode=$mode seq_bytes=$seq_bytes seq_ns=$seq_ns $rand_out" \
	"vdb_reads=$vdb_reads vdb_sectors=$vdb_sectors clocksource=$clocksource"
