#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the guest kernel, or takes it from the cache, and copies vmlinux
# (uncompressed ELF without debug info) and bzImage into OUTPUT_DIR.
#
# The cache lives at ${SMCORE_CACHE_DIR:-/var/cache/smcore}/kernel/<key>/,
# where the key covers the source tarball (name, size, mtime), the config
# fragment, this script and the compiler version.
# SMCORE_KERNEL_SOURCE overrides the source tarball path.

set -euo pipefail

readonly script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly script_path="$script_dir/$(basename "${BASH_SOURCE[0]}")"
readonly fragment="$script_dir/smcore.config"
readonly source_tarball=${SMCORE_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
readonly cache_root="${SMCORE_CACHE_DIR:-/var/cache/smcore}/kernel"
readonly start_seconds=$SECONDS

log() {
	printf 'kernel: [%4ds] %s\n' "$((SECONDS - start_seconds))" "$*" >&2
}

die() {
	printf 'kernel: error: %s\n' "$*" >&2
	exit 1
}

check_tools() {
	local tool missing=()
	for tool in tar make gcc flex bison bc lz4 objcopy perl sha256sum; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	if ((${#missing[@]})); then
		die "missing build tools: ${missing[*]} (install them, for example with apt-get)"
	fi
}

cache_key() {
	{
		stat -L -c 'source %n %s %Y' "$source_tarball"
		sha256sum <"$fragment"
		sha256sum <"$script_path"
		gcc --version | head -n 1
	} | sha256sum | cut -c 1-16
}

# Copies FILE into DIR under a temporary name and renames it, so a reader
# never sees a partly written file.
install_atomically() {
	local file=$1 dir=$2 name
	name=$(basename "$file")
	cp -f "$file" "$dir/.$name.tmp.$$"
	mv -f "$dir/.$name.tmp.$$" "$dir/$name"
}

# Fails naming every fragment option whose value differs in the final .config.
verify_config() {
	local config=$1 line name value missing=()
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			grep -qxF -- "$line" "$config" || missing+=("$line")
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			name=${BASH_REMATCH[1]}
			if value=$(grep -m 1 "^$name=" "$config"); then
				missing+=("$line (got $value)")
			fi
		fi
	done <"$fragment"

	if ((${#missing[@]})); then
		printf 'kernel: error: option did not stick (a dependency is missing): %s\n' \
			"${missing[@]}" >&2
		exit 1
	fi
}

# Runs make, appending its output to LOG_FILE, and prints the end of
# LOG_FILE when make fails.
run_make() {
	local log_file=$1
	shift
	if ! make "$@" >>"$log_file" 2>&1; then
		printf 'kernel: error: make %s failed; last lines of its log:\n' "$*" >&2
		tail -n 40 "$log_file" >&2
		exit 1
	fi
}

build_kernel() {
	local work=$1 src=$1/src obj=$1/obj result=$1/result log_file=$1/build.log
	local make_args

	log "unpacking $source_tarball"
	mkdir -p "$src" "$obj" "$result"
	tar -xf "$source_tarball" -C "$src" --strip-components=1

	make_args=(-C "$src" O="$obj" ARCH=x86_64)
	log "configuring (tinyconfig + $(basename "$fragment"))"
	run_make "$log_file" "${make_args[@]}" tinyconfig
	if ! "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment" \
		>>"$log_file" 2>&1; then
		tail -n 20 "$log_file" >&2
		die "merge_config.sh failed"
	fi
	run_make "$log_file" "${make_args[@]}" olddefconfig
	verify_config "$obj/.config"

	log "compiling with make -j$(nproc) (this takes a few minutes)"
	run_make "$log_file" "${make_args[@]}" -j"$(nproc)" vmlinux bzImage

	objcopy --strip-debug "$obj/vmlinux" "$result/vmlinux"
	cp "$obj/arch/x86/boot/bzImage" "$obj/.config" "$result/"
	mv "$result/.config" "$result/config"
	cp "$log_file" "$result/build.log"
}

# Deletes the build directory WORK, keeping its log when STATUS is a failure.
remove_work_dir() {
	local work=$1 status=$2
	if ((status != 0)) && [[ -f $work/build.log ]]; then
		cp "$work/build.log" "$cache_root/failed-build.log"
		printf 'kernel: the full log is in %s\n' "$cache_root/failed-build.log" >&2
	fi
	rm -rf "$work"
}

main() {
	local output_dir key entry work lock_fd
	if (($# != 1)); then
		echo "usage: $0 OUTPUT_DIR" >&2
		exit 2
	fi
	output_dir=$1

	[[ -r $source_tarball ]] ||
		die "kernel source $source_tarball not found (install linux-source-6.1 or set SMCORE_KERNEL_SOURCE)"
	mkdir -p "$output_dir"
	mkdir -p "$cache_root" 2>/dev/null && [[ -w $cache_root ]] ||
		die "cache directory $cache_root is not writable (set SMCORE_CACHE_DIR)"

	key=$(cache_key)
	entry="$cache_root/$key"

	# Concurrent calls with the same inputs wait for one build to finish
	# instead of each building the same kernel.
	exec {lock_fd}>"$cache_root/.lock-$key"
	if ! flock -n "$lock_fd"; then
		log "waiting for another build of the same kernel to finish"
		flock "$lock_fd"
	fi

	if [[ -f $entry/vmlinux && -f $entry/bzImage ]]; then
		log "cache hit: $entry"
	else
		check_tools
		log "cache miss: building into $entry"
		work=$(mktemp -d "$cache_root/.build.XXXXXX")
		trap 'remove_work_dir "$work" $?' EXIT
		build_kernel "$work"
		# An incomplete entry can only be left by hand; replace it.
		rm -rf "$entry"
		mv -T "$work/result" "$entry" || die "cannot move the build result to $entry"
		rm -rf "$work"
		trap - EXIT
	fi

	install_atomically "$entry/vmlinux" "$output_dir"
	install_atomically "$entry/bzImage" "$output_dir"
	log "done: $output_dir/vmlinux $output_dir/bzImage"
}

main "$@"
