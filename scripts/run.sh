#!/usr/bin/env bash
# The main job on the embedded defaults (`make run`): the daemon (local store, SQLite
# registry under ARTISYNC_HOME, default ~/.local/share/artisync), the example training
# script logged through it, then the daemon keeps running until Ctrl-C, SIGTERM or
# `artisync stop`. The daemon's log goes to a file, so what is shown is the example's.
set -uo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
cli=("$python" -m artisync.cli)
# The command a person types to stop it: the environment's own `artisync` if it has one.
bin="$(dirname "$python")/artisync"
[ -x "$bin" ] || bin="$python -m artisync.cli"

home="$("$python" -c 'from artisync.config import default_home; print(default_home())')" || exit 1
export ARTISYNC_HOME="$home"
mkdir -p "$home"
log="$home/daemon.log"

if "${cli[@]}" status >/dev/null 2>&1; then
  # Another daemon serves this home: log through it, and leave it be.
  "$python" examples/train.py || exit 1
  echo
  echo "The daemon that was already running on $home keeps running; stop it with:"
  echo "  $bin --home $home stop"
  exit 0
fi

# Started here (not by a client's autostart) so that it is ours to stop with this script.
"${cli[@]}" daemon >>"$log" 2>&1 &
daemon=$!
example=""
stop() {
  trap - INT TERM
  [ -n "$example" ] && kill -TERM "$example" 2>/dev/null
  kill -TERM "$daemon" 2>/dev/null
  wait "$daemon" 2>/dev/null
  echo
  echo "stopped the daemon (pid $daemon)"
  exit 0
}
trap stop INT TERM

echo "The artisync daemon (pid $daemon) runs on $home; its log: $log"
for _ in $(seq 200); do
  "${cli[@]}" status >/dev/null 2>&1 && break
  if ! kill -0 "$daemon" 2>/dev/null; then
    echo "The daemon exited at start; the end of its log:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
  sleep 0.1
done

echo
# In the background, then waited for: a signal is handled at once, not after it ends.
"$python" examples/train.py &
example=$!
wait "$example"
status=$?
example=""
[ "$status" -eq 0 ] || echo "The example failed (exit $status); the daemon's log: $log" >&2

echo
echo "Look at what it logged:  $bin ls example;  $bin lineage example/model:best"
echo "The daemon keeps running. Stop it with Ctrl-C here, or from another terminal:"
echo "  $bin --home $home stop"
wait "$daemon"
echo "the daemon (pid $daemon) has stopped"
