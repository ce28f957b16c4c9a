# SPDX-License-Identifier: Apache-2.0
# Helpers for the integration test scripts: run a command, keep its output and status.

failures=0
checks=0

# Seconds a run may take before run_capture stops it; 0 waits forever.
RUN_DEADLINE=${RUN_DEADLINE:-0}

# Print what the threads of process $1 are waiting on, and the kernel's last
# messages, to show where a hung run stopped.
show_hung_process() {
	local pid=$1 task

	echo "  process $pid did not exit within $RUN_DEADLINE s; its threads:" >&2
	for task in /proc/"$pid"/task/*; do
		echo "  thread ${task##*/} ($(cat "$task/comm" 2>/dev/null)): state $(awk '{print $3}' "$task/stat" 2>/dev/null), waiting in $(cat "$task/wchan" 2>/dev/null)" >&2
		sed 's/^/    /' "$task/stack" >&2 2>/dev/null || true
	done
	echo "  last kernel messages:" >&2
	dmesg 2>/dev/null | tail -n 30 | sed 's/^/    /' >&2 || true
}

# Stop process $1 once RUN_DEADLINE seconds have passed, after describing it.
watch_deadline() {
	local pid=$1 sleeper

	trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
	sleep "$RUN_DEADLINE" &
	sleeper=$!
	wait "$sleeper"
	if kill -0 "$pid" 2>/dev/null; then
		show_hung_process "$pid"
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# With SMCORE_TEST_RESULT_DIR set, each finished run is kept there under its
# NAME, and a run that is already there is not repeated: a suite restarted
# after its machine hung goes on where it stopped.
SMCORE_TEST_RESULT_DIR=${SMCORE_TEST_RESULT_DIR:-}

# run_capture NAME CMD...: runs CMD, stores stdout in $out, stderr in $err, status in $status.
run_capture() {
	local name=$1
	shift
	local out_file err_file pid watcher="" kept=""
	if [ -n "$SMCORE_TEST_RESULT_DIR" ]; then
		kept=$SMCORE_TEST_RESULT_DIR/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_')
		if [ -f "$kept.status" ]; then
			out=$(cat "$kept.out")
			err=$(cat "$kept.err")
			status=$(cat "$kept.status")
			echo "--- $name: exit $status (kept from an earlier attempt)" >&2
			return 0
		fi
	fi
	out_file=$(mktemp)
	err_file=$(mktemp)
	set +e
	"$@" <&0 >"$out_file" 2>"$err_file" &
	pid=$!
	if [ "$RUN_DEADLINE" -gt 0 ]; then
		watch_deadline "$pid" &
		watcher=$!
	fi
	wait "$pid"
	status=$?
	if [ -n "$watcher" ]; then
		kill -TERM "$watcher" 2>/dev/null
		wait "$watcher" 2>/dev/null
	fi
	set -e
	out=$(cat "$out_file")
	err=$(cat "$err_file")
	if [ -n "$kept" ]; then
		cp "$out_file" "$kept.out"
		cp "$err_file" "$kept.err"
		echo "$status" >"$kept.status"
	fi
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

lacks() {
	[[ "$1" != *"$2"* ]]
}

# matches TEXT REGEX: whether TEXT matches the extended regular expression.
matches() {
	[[ "$1" =~ $2 ]]
}

finish() {
	echo "$((checks - failures)) passed, $failures failed" >&2
	[ "$failures" -eq 0 ]
}
