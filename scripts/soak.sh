#!/usr/bin/env bash
# The flake soak (issue 19): the whole suite N times in a row (default 10) while another
# process keeps one core busy, stopping at the first failing run. Each run's log is kept
# in soak-logs/ and a line per run goes to soak-logs/summary.txt.
#
#   bash scripts/soak.sh            # ten runs
#   bash scripts/soak.sh 3 -k web   # three runs of a part (extra args go to pytest)
#
# Needs `make setup` done; PostgreSQL is provisioned as `make test` does it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
shift || true
mkdir -p soak-logs
bash scripts/ensure-postgres.sh
bash scripts/ensure-chromium.sh
if [ -s .pg-test-url ]; then
  export LIAISON_TEST_POSTGRES_URL="$(cat .pg-test-url)"
fi
export CI=true

# One core kept busy for the whole soak, as a loaded CI machine would.
python3 -c 'while True: pass' &
burner=$!
trap 'kill "$burner" 2>/dev/null || true' EXIT

for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if .venv/bin/pytest -q -n "${TEST_WORKERS:-3}" --dist worksteal -p no:cacheprovider "$@" \
      > "soak-logs/run-$i.log" 2>&1; then
    result=passed
  else
    result=FAILED
  fi
  line="run $i/$runs: $result in $(( $(date +%s) - start )) s ($(tail -n 1 "soak-logs/run-$i.log"))"
  echo "$line" | tee -a soak-logs/summary.txt
  [ "$result" = passed ] || exit 1
done
echo "all $runs runs passed with one core kept busy" | tee -a soak-logs/summary.txt
