#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Boots the guest kernel with the guest init under QEMU TCG (no KVM needed)
# and checks the init's contract. Each case checks the workload's output on the
# console and the status line on the second serial port. The cases are a
# normal exit, a death by signal, a missing program, the env and cwd entries,
# an invalid run file and a missing run file.
#
# usage: kernel/test-boot.sh [VMLINUX INIT]
# Without arguments it builds both: the kernel with build.sh (cached) and the
# init with musl-gcc. Needs root (for the /dev/console node in the cpio),
# qemu-system-x86_64, cpio and busybox-static.

set -euo pipefail

readonly script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly busybox=${BUSYBOX:-/bin/busybox}
readonly boot_timeout=${SMCORE_TEST_BOOT_TIMEOUT:-120}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

die() {
	printf 'test-boot: error: %s\n' "$*" >&2
	exit 1
}

# Writes the run file PATH from the KEY VALUE pairs that follow.
write_run_file() {
	local path=$1
	shift
	: >"$path"
	while (($#)); do
		printf '%s\0%s\0' "$1" "$2" >>"$path"
		shift 2
	done
}

# Packs the test initramfs CPIO with the init and the run file RUN.
make_initramfs() {
	local cpio_path=$1 run=$2 root="$work/root"
	rm -rf "$root"
	mkdir -p "$root/dev" "$root/bin" "$root/smcore"
	cp "$init" "$root/init"
	cp "$busybox" "$root/bin/busybox"
	mknod -m 600 "$root/dev/console" c 5 1
	if [[ -n $run ]]; then
		cp "$run" "$root/smcore/run"
	fi
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc) >"$cpio_path"
}

# Boots $work/NAME.cpio and writes the console output to $work/NAME.out and
# the status channel to $work/NAME.status.
boot() {
	local name=$1 cpio_path="$work/$1.cpio" start end
	: >"$work/$name.status"
	start=$(date +%s.%N)
	timeout "$boot_timeout" qemu-system-x86_64 -accel tcg -M pc -m 256 \
		-kernel "$vmlinux" -initrd "$cpio_path" \
		-append 'console=ttyS0 reboot=k panic=-1 quiet' \
		-serial stdio -serial "file:$work/$name.status" \
		-display none -monitor none -no-reboot \
		</dev/null >"$work/$name.out" 2>&1 || echo "qemu exited with status $?" >>"$work/$name.out"
	end=$(date +%s.%N)
	printf 'test-boot: %s: booted and shut down in %.2f s\n' "$name" "$(echo "$end - $start" | bc)" >&2
}

# Checks that FILE of case NAME contains TEXT.
expect() {
	local name=$1 file=$2 text=$3
	if grep -qF -- "$text" "$file"; then
		printf 'test-boot: %s: ok: found "%s"\n' "$name" "$text" >&2
	else
		printf 'test-boot: %s: FAILED: "%s" not in %s; it contains:\n' "$name" "$text" "$(basename "$file")" >&2
		sed 's/^/    /' "$file" >&2
		failures=$((failures + 1))
	fi
}

# Checks that the status channel of case NAME contains exactly the line LINE.
expect_status() {
	local name=$1 line=$2 actual
	actual=$(cat "$work/$name.status")
	if [[ $actual == "$line" ]]; then
		printf 'test-boot: %s: ok: status "%s"\n' "$name" "$line" >&2
	else
		printf 'test-boot: %s: FAILED: status is "%s", expected "%s"; console:\n' \
			"$name" "$actual" "$line" >&2
		sed 's/^/    /' "$work/$name.out" >&2
		failures=$((failures + 1))
	fi
}

run_case() {
	local name=$1
	shift
	write_run_file "$work/$name.run" "$@"
	make_initramfs "$work/$name.cpio" "$work/$name.run"
	boot "$name"
}

prepare_inputs() {
	if (($# == 2)); then
		vmlinux=$1
		init=$2
	elif (($# == 0)); then
		"$script_dir/build.sh" "$work/kernel"
		vmlinux="$work/kernel/vmlinux"
		init="$work/smcore-init"
		musl-gcc -static -Os -Wall -Wextra -o "$init" "$script_dir/init/init.c"
	else
		echo "usage: $0 [VMLINUX INIT]" >&2
		exit 2
	fi

	((EUID == 0)) || die "must run as root to create /dev/console in the test cpio"
	local file
	for file in "$vmlinux" "$init" "$busybox"; do
		[[ -r $file ]] || die "$file not found"
	done
	for file in qemu-system-x86_64 cpio timeout bc; do
		command -v "$file" >/dev/null || die "$file is not installed"
	done
}

main() {
	prepare_inputs "$@"

	run_case exit argv /bin/busybox argv sh argv -c \
		argv 'busybox uname -r; echo hello; exit 7'
	expect exit "$work/exit.out" "6.1."
	expect exit "$work/exit.out" "hello"
	expect_status exit "smcore-exit: exit 7"

	run_case signal argv /bin/busybox argv sh argv -c argv 'kill -9 $$'
	expect_status signal "smcore-exit: signal 9"

	run_case missing argv /no/such/program
	expect missing "$work/missing.out" "smcore-init: cannot run '/no/such/program': No such file or directory"
	expect_status missing "smcore-exit: exit 127"

	# "busybox" without a slash is found through the default PATH.
	run_case environment argv busybox argv sh argv -c \
		argv 'echo "greeting=$GREETING home=$HOME pwd=$(pwd)"; busybox mount' \
		env GREETING=hi env HOME=/tmp cwd /run
	expect environment "$work/environment.out" "greeting=hi home=/tmp pwd=/run"
	expect environment "$work/environment.out" "devpts on /dev/pts"
	expect environment "$work/environment.out" "tmpfs on /run"
	expect_status environment "smcore-exit: exit 0"

	# The last key has no value.
	printf 'argv\0/bin/busybox\0argv\0' >"$work/invalid.run"
	make_initramfs "$work/invalid.cpio" "$work/invalid.run"
	boot invalid
	expect invalid "$work/invalid.out" "smcore-init: /smcore/run: invalid"
	expect_status invalid "smcore-exit: exit 125"

	make_initramfs "$work/no-run-file.cpio" ""
	boot no-run-file
	expect no-run-file "$work/no-run-file.out" "smcore-init: cannot read /smcore/run"
	expect_status no-run-file "smcore-exit: exit 125"

	if ((failures)); then
		die "$failures check(s) failed"
	fi
	echo "test-boot: all checks passed" >&2
}

main "$@"
