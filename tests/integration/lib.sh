# SPDX-License-Identifier: Apache-2.0
# Helpers for the integration test scripts: run a command, keep its output and status.

failures=0
checks=0

# Seconds a run may take before run_capture stops it; 0 waits forever.
RUN_DEADLINE=${RUN_DEADLINE:-0}

# Print what the threads of process $1 are waiting on, and the kernel's last
# messages, so a run that hangs says where.
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

# run_capture NAME CMD...: runs CMD, stores stdout in $out, stderr in $err, status in $status.
run_capture() {
	local name=$1
	shift
	local out_file err_file pid watcher=""
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
