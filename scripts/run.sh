#!/usr/bin/env bash
# The main job on the embedded defaults: the daemon (local store, SQLite registry under
# ARTISYNC_HOME, default ~/.local/share/artisync), one logged example, then the daemon
# keeps running in the foreground until Ctrl-C or SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
artisync() { "$python" -m artisync.cli "$@"; }

artisync daemon &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null; wait "$daemon"' INT TERM

# Wait until it answers (or died: another daemon may already serve this home).
for _ in $(seq 100); do
  artisync status >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { echo "the daemon exited; see its message above" >&2; exit 1; }
  sleep 0.1
done

"$python" examples/train.py
artisync status
echo "The daemon keeps running (pid $daemon); Ctrl-C stops it."
wait "$daemon"
