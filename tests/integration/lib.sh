# SPDX-License-Identifier: Apache-2.0
# Helpers for the integration test scripts: run a command, keep its output and status.

failures=0
checks=0

# run_capture NAME CMD...: runs CMD, stores stdout in $out, stderr in $err, status in $status.
run_capture() {
	local name=$1
	shift
	local out_file err_file
	out_file=$(mktemp)
	err_file=$(mktemp)
	set +e
	"$@" >"$out_file" 2>"$err_file"
	status=$?
	set -e
	out=$(cat "$out_file")
	err=$(cat "$err_file")
	rm -f "$out_file" "$err_file"
	echo "--- $name: exit $status" >&2
}

# check DESCRIPTION CONDITION...: evaluates the test(1) condition and records the result.
check() {
	local description=$1
	shift
	checks=$((checks + 1))
	if "$@"; then
		echo "ok: $description" >&2
	else
		failures=$((failures + 1))
		echo "FAILED: $description" >&2
		echo "  stdout: ${out:0:2000}" >&2
		echo "  stderr: ${err:0:2000}" >&2
	fi
}

contains() {
	[[ "$1" == *"$2"* ]]
}

finish() {
	echo "$((checks - failures)) passed, $failures failed" >&2
	[ "$failures" -eq 0 ]
}
