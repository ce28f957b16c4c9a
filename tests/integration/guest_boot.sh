#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Boot real Linux guests with smcore: on this host's KVM when it passes hv-kvm's
# probe, else inside the testbed VM, else skip.
set -euo pipefail
smcore=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

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
exec "$root/tests/testbed/run" "$here/guest_checks.sh" "$smcore"
