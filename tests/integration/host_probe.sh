#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# hv-kvm's probe against this host's KVM, and what smcore does with its verdict.
set -euo pipefail
smcore=$1
source "$(dirname "$0")/lib.sh"

if [ ! -r /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not available on this host" >&2
	exit 77
fi

run_capture "probe" "$smcore" -v probe
echo "probe verdict: ${err:-$out}" >&2
if [ "$status" -eq 0 ]; then
	check "a passing probe says so" contains "$out" "can run Linux guests"
	check "the passing verdict is logged" contains "$err" "probe"
	finish
	exit
fi

check "a failing probe exits 1" [ "$status" -eq 1 ]
check "a failing probe names the failed check" contains "$err" "SYSCALL"
check "a failing probe points to the testbed" contains "$err" "tests/testbed/run"

start=$(date +%s%N)
run_capture "hello on a failing host" timeout 60 "$smcore" --config configs/hello.ini
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "smcore gave up after $elapsed_ms ms" >&2
check "hello.ini fails with the probe's message instead of hanging" [ "$status" -eq 1 ]
check "hello.ini's failure names the testbed" contains "$err" "tests/testbed/run"
check "no guest output on a failing host" [ -z "$out" ]
finish
