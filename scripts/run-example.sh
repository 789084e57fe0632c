#!/usr/bin/env bash
# Runs an example project end to end with the freshly built binary: validate, then run its
# pipelines. Its state and lake live in <example>/.ferry (git-ignored); run it again to see the
# tasks cached.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ferry="$here/build/ferry"
cd "$here/$1"
"$ferry" validate
"$ferry" run pipelines/train.yaml
echo
# What the run registered and the experiments it recorded (empty for a project without models).
"$ferry" models
echo
"$ferry" experiments
echo

# Serving (docs/serving.md), when the example has an HTTP client: deploy the champion to
# endpoint `churn`, serve it, send it rows, then canary a challenger and watch it promoted.
if [[ -f clients/invoke.py ]]; then
  echo "== deploy the champion (blue-green) and serve it"
  "$ferry" deploy churn --model churn:champion --wait
  # The rollout below is driven by `deploy --wait`; the serving process only serves.
  "$ferry" serve --endpoint churn --port 0 --no-reconcile >.ferry/serve.out 2>.ferry/serve.log &
  serve_pid=$!
  trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
  port=""
  for _ in $(seq 1 400); do
    port=$(sed -n 's|^serving endpoint churn on http://127.0.0.1:\([0-9]*\)$|\1|p' .ferry/serve.out)
    [[ -n "$port" ]] && break
    kill -0 "$serve_pid" 2>/dev/null || { cat .ferry/serve.log; exit 1; }
    sleep 0.05
  done
  [[ -n "$port" ]] || { echo "ferry serve did not start"; cat .ferry/serve.log; exit 1; }
  echo "serving on http://127.0.0.1:$port — three predictions and their transaction ids:"
  python3 clients/invoke.py --port "$port"
  echo
  echo "== a challenger: the same pipeline with C=0.3 registers another version"
  "$ferry" run pipelines/train.yaml -p C=0.3 | tail -n 2 | head -n 1
  "$ferry" models
  echo
  echo "== canary it: 20% of the traffic for 4 s, rolled back if it errs or is slow"
  python3 clients/invoke.py --port "$port" --seconds 6 &
  traffic_pid=$!
  "$ferry" deploy churn --model churn:latest --strategy canary --weight 20 --bake 4s \
    --rollback-on 'error_rate>0.01,p99_ms>25' --wait
  wait "$traffic_pid"
  echo
  "$ferry" endpoint show churn
  kill -TERM "$serve_pid"
  wait "$serve_pid" || true
  trap - EXIT
  echo
  echo "inference log (every request's features, predictions and transaction id):"
  echo "  $here/$1/.ferry/lake/inference/churn/"
fi

# Batch scoring and monitoring (docs/batch.md, docs/monitoring.md), when the example simulates a
# week: score seven daily files (each row filed at its own time in the inference log of
# `churn-week`, kept apart from the live endpoint's traffic above so that the week reads the same
# on every run), label them with outcomes that drift away from the predictions, and let the
# monitor measure the drift and the degradation rate.
if [[ -f clients/simulate_week.py ]]; then
  echo
  echo "== a week of traffic: seven daily files, 'charges' drifting upwards"
  # Made once: running the example again finds the batch job done (the same files) and says so.
  [[ -d .ferry/week ]] || python3 clients/simulate_week.py traffic --out .ferry/week
  echo "== batch-score them with the champion (each row also goes to the inference log of churn-week)"
  "$ferry" batch churn:champion --input '.ferry/week/day-*.csv' --output .ferry/week/scored \
    --log-endpoint churn-week --time-column ts --wait
  "$ferry" batch-jobs --limit 1
  echo
  echo "== the outcomes arrive: labels joined by transaction id"
  python3 clients/simulate_week.py outcomes --scored .ferry/week/scored \
    --out .ferry/week/outcomes.csv
  "$ferry" labels churn-week --input .ferry/week/outcomes.csv --id-column transaction_id --label churned
  echo
  echo "== monitor the week (exit 3 means an alert was raised: expected here)"
  rc=0
  "$ferry" monitor churn-week --window 8d --segment plan || rc=$?
  [[ $rc == 0 || $rc == 3 ]] || exit "$rc"
fi
echo
echo "state: $here/$1/.ferry/state.db   lake: $here/$1/.ferry/lake"
echo "try:   cd $1 && $ferry runs && $ferry show <run-id>"
