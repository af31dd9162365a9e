#!/usr/bin/env bash
# The README's run command as a newcomer types it: `make run` shows the example's
# results and a stop command, and that command stops the daemon and ends make cleanly.
set -euo pipefail
home="$(mktemp -d)"
out="$home.out"
trap 'rm -rf "$home" "$out"' EXIT
hint="from another terminal:"
ARTISYNC_HOME="$home" make --no-print-directory run >"$out" 2>&1 &
make_pid=$!
for _ in $(seq 1800); do  # a first run builds the package first
  grep -q "$hint" "$out" && break
  kill -0 "$make_pid" 2>/dev/null || break
  sleep 0.5
done
cat "$out"
grep -q "$hint" "$out" || { echo "check_make_run: make run printed no stop command" >&2; exit 1; }
logged="$(grep -cE '^example/(pets|model):v[0-9]+  [0-9a-f]{32}$' "$out" || true)"
[ "$logged" -eq 6 ] || { echo "check_make_run: 6 versions expected, $logged shown" >&2; exit 1; }
stop_command="$(grep -A1 "$hint" "$out" | tail -n 1)"
$stop_command
wait "$make_pid" || { echo "check_make_run: make run ended with $?" >&2; exit 1; }
if [ -e "$home/daemon.sock" ]; then echo "check_make_run: the socket stayed" >&2; exit 1; fi
echo "check_make_run: 6 versions logged; '$stop_command' stopped the daemon and make run"
