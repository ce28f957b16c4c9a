#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Boot real Linux guests with smcore: on this host's KVM when it passes hv-kvm's
# probe, else inside the testbed VM, else skip.
set -euo pipefail
smcore=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# The Debian image for the OCI checks is built and imported here on the
# host: inside the emulated testbed the import would take minutes.
if [ "$(id -u)" -eq 0 ]; then
	"$root/tests/images/debian-oci" >/dev/null
	"$smcore" image import "$(sed -n 's/^image = //p' "$root/configs/debian.ini")" >&2
else
	export SMCORE_TEST_DEBIAN=skip
fi

if [ -r /dev/kvm ] && "$smcore" probe >/dev/null 2>&1; then
	echo "guest_boot: this host's KVM passes the probe; booting guests here" >&2
	exec "$here/guest_checks.sh" "$smcore"
fi
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v debootstrap >/dev/null; then
	echo "SKIP: this host's KVM cannot run Linux guests and the testbed needs qemu-system-x86 and debootstrap (scripts/install-deps installs them)" >&2
	exit 77
fi
echo "guest_boot: this host's KVM fails the probe; booting guests inside the testbed" >&2
# Stop the testbed before ctest's limit, so its console tail gets printed.
export TESTBED_TIMEOUT=${TESTBED_TIMEOUT:-1500}
# The emulated testbed machine has stopped responding now and then, about
# once in 60 to 80 smcore runs (see docs/testbed.md). Then a fresh testbed
# goes on from the first run that had not finished, keeping the results of
# the others, up to three times. A testbed counts as hung after 90 s
# without its heartbeat.
cache_root=${SMCORE_CACHE_DIR:-/var/cache/smcore}
mkdir -p "$cache_root/runs"
export SMCORE_TEST_RESULT_DIR
SMCORE_TEST_RESULT_DIR=$(mktemp -d "$cache_root/runs/guest-checks.XXXXXX")
trap 'rm -rf "$SMCORE_TEST_RESULT_DIR"' EXIT
export TESTBED_HANG_TIMEOUT=${TESTBED_HANG_TIMEOUT:-90}
for attempt in 1 2 3 4; do
	status=0
	"$root/tests/testbed/run" "$here/guest_checks.sh" "$smcore" || status=$?
	if [ "$status" -ne 125 ] || [ "$attempt" -eq 4 ]; then
		exit "$status"
	fi
	echo "guest_boot: the testbed failed (exit 125); starting a fresh one that keeps $(ls "$SMCORE_TEST_RESULT_DIR" | grep -c '\.status$') finished runs" >&2
done
