#!/usr/bin/env bash
# Real-time serving: `ferry serve` with a logistic regression against nginx returning a fixed
# JSON body (the ceiling) and Flask + scikit-learn under gunicorn (the article's stack), all on
# this machine in one run, measured with wrk.
#
#   bench/serve.sh                                # all three, 10 s per measurement
#   DURATION=5 SERVERS="nginx gunicorn_flask" bench/serve.sh
#   FERRY=build-release/ferry OUT=/tmp/s.json bench/serve.sh
#
# For each server, one at a time, on a free loopback port below 32768 (outside Linux's
# ephemeral range, which wrk's own connections use):
#   1. start it and wait until it answers (ferry: GET /ready is 200);
#   2. POST bench/serve/request.json (one row of 20 features f0..f19) with curl: the response
#      must be a 200 with a JSON body holding "predictions", else the bench fails;
#   3. warm up: wrk -t1 -c64 for WARMUP seconds (not recorded);
#   4. throughput: wrk -t1 -c64 -d${DURATION}s -s bench/serve/post.lua  -> Requests/sec
#   5. latency:    wrk -t1 -c1  -d${DURATION}s --latency -s post.lua    -> the 99% line
#   6. stop it (SIGTERM, then wait for it).
# Every request of wrk is the same POST /invocations. Any non-2xx response fails the bench.
#
# The servers:
#   nginx           bench/serve/nginx.conf: worker_processes auto, access_log off, `return 200`
#                   of a fixed prediction-shaped JSON body (no model, no parsing).
#   ferry           the rows below trained by a ferry pipeline (sql -> split -> train
#                   logistic_regression -> evaluate -> register bench:champion), deployed with
#                   `ferry deploy bench --model bench:champion --wait` (blue-green), served by
#                   `ferry serve --endpoint bench --host 127.0.0.1 --port P` with the inference
#                   log on; after it stops, the log must hold at least one segment.
#   gunicorn_flask  bench/serve/flask_app.py: scikit-learn's LogisticRegression fitted on the
#                   same rows (pickled by a setup step), `gunicorn -w 2` (sync workers).
# The data: ROWS rows (default 20000) of 20 features f0..f19 and a binary label y, generated with
# a fixed seed (python3's random, seed 7), written as a CSV (Flask) and a SQLite table (ferry).
#
# Targets (issue 5): ferry >= 60% of nginx's req/s and >= 30x gunicorn+Flask's at c=64, and a
# p99 <= 0.5 ms at c=1. A missed target is reported; the script still exits 0. It exits
# non-zero when a server fails to start, answers a non-200 or an error, or a tool is missing.
# The ferry part is skipped, with a message, only when the ferry binary has no `serve` command
# yet; every other ferry failure fails the bench.
# Prints a table and writes bench/results/serve.json (schema: bench/README.md).
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROWS=${ROWS:-20000}
SERVERS=${SERVERS:-nginx ferry gunicorn_flask}
FERRY_THREADS=${FERRY_THREADS:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
FERRY=${FERRY:-$root/build/ferry}
OUT=${OUT:-$here/results/serve.json}
PYTHON=${PYTHON:-/usr/bin/python3}

die() { echo "bench/serve.sh: $*" >&2; exit 2; }
say() { echo "$*" >&2; }

[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -ge 1 ]] || die "DURATION must be an integer >= 1 (got '$DURATION')"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be an integer >= 0 (got '$WARMUP')"
[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -ge 100 ]] || die "ROWS must be an integer >= 100 (got '$ROWS')"
[[ -z "$FERRY_THREADS" || "$FERRY_THREADS" =~ ^[1-9][0-9]*$ ]] || die "FERRY_THREADS must be a positive integer (got '$FERRY_THREADS')"
for s in $SERVERS; do
  case "$s" in nginx | ferry | gunicorn_flask) ;; *) die "unknown server '$s' in SERVERS (known: nginx ferry gunicorn_flask)" ;; esac
done
for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed; run \`scripts/install-deps.sh --bench\`"
done
[[ " $SERVERS " != *" nginx "* ]] || [[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null ||
  die "nginx is not installed; run \`scripts/install-deps.sh --bench\` (Debian package nginx-light)"
if [[ " $SERVERS " == *" gunicorn_flask "* ]]; then
  command -v gunicorn >/dev/null || die "gunicorn is not installed; run \`scripts/install-deps.sh --bench\`"
  "$PYTHON" -c 'import flask, sklearn, numpy' 2>/dev/null ||
    die "$PYTHON cannot import flask, sklearn and numpy; install python3-flask and python3-sklearn (or set PYTHON=...)"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-serve.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/logs" "$work/bin"
cp "$here/serve/post.lua" "$here/serve/request.json" "$here/serve/flask_app.py" "$work/bin/"
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

# free_port: a port of 127.0.0.1 in [20000, 32767] that nobody listens on now.
free_port() {
  "$PYTHON" - <<'PY'
import random, socket
rng = random.SystemRandom()
for _ in range(200):
    port = rng.randint(20000, 32767)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
else:
    raise SystemExit("no free port in [20000, 32767]")
PY
}

# stop PID: SIGTERM, then wait up to 20 s for it to exit (SIGKILL after that).
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${pids[@]}"; do [[ "$p" == "$pid" ]] || kept+=("$p"); done
  pids=("${kept[@]+"${kept[@]}"}")
}

# wait_ok NAME PID URL LOG [SECONDS]: poll URL until it answers 200, while PID lives.
wait_ok() {
  local name=$1 pid=$2 url=$3 log=$4 seconds=${5:-60} i
  for ((i = 0; i < seconds * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$log" >&2 || true
      die "$name exited before answering $url (its log above)"
    fi
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]] && return 0
    sleep 0.1
  done
  tail -n 30 "$log" >&2 || true
  die "$name did not answer 200 on $url within ${seconds}s (its log above)"
}

# check_post NAME URL: the bench's request must get a 200 with a JSON body holding predictions.
check_post() {
  local name=$1 url=$2 code
  code=$(curl -sS -o "$work/logs/$name.response" -w '%{http_code}' --max-time 10 \
    -H 'Content-Type: application/json' --data-binary "@$work/bin/request.json" "$url") ||
    die "$name: POST $url failed (curl above)"
  [[ "$code" == 200 ]] || die "$name: POST $url answered $code, not 200: $(head -c 500 "$work/logs/$name.response")"
  "$PYTHON" - "$work/logs/$name.response" <<'PY' || die "$name: the response to POST $url is not a JSON object with a non-empty \"predictions\" list: $(head -c 500 "$work/logs/$name.response")"
import json, sys
body = json.load(open(sys.argv[1]))
assert isinstance(body, dict) and isinstance(body.get("predictions"), list) and body["predictions"]
PY
  say "  $name: POST /invocations -> 200 $(head -c 160 "$work/logs/$name.response")"
}

# measure NAME URL: warm-up, then the two recorded wrk runs into logs/NAME.c64 and logs/NAME.c1.
measure() {
  local name=$1 url=$2
  check_post "$name" "$url"
  if [[ "$WARMUP" -gt 0 ]]; then
    wrk -t1 -c64 -d"${WARMUP}s" -s "$work/bin/post.lua" "$url" >"$work/logs/$name.warmup" 2>&1 ||
      { cat "$work/logs/$name.warmup" >&2; die "$name: wrk warm-up failed (output above)"; }
  fi
  say "  $name: wrk -t1 -c64 -d${DURATION}s"
  wrk -t1 -c64 -d"${DURATION}s" -s "$work/bin/post.lua" "$url" >"$work/logs/$name.c64" 2>&1 ||
    { cat "$work/logs/$name.c64" >&2; die "$name: wrk -c64 failed (output above)"; }
  say "  $name: wrk -t1 -c1 -d${DURATION}s --latency"
  wrk -t1 -c1 -d"${DURATION}s" --latency -s "$work/bin/post.lua" "$url" >"$work/logs/$name.c1" 2>&1 ||
    { cat "$work/logs/$name.c1" >&2; die "$name: wrk -c1 failed (output above)"; }
  check_post "$name" "$url"   # still answering correctly after the load
}

# --- The data (also what ferry and Flask train on) ----------------------------------------------
if [[ " $SERVERS " == *" ferry "* || " $SERVERS " == *" gunicorn_flask "* ]]; then
  say "generating $ROWS rows x 20 features + y (seed 7)"
  "$PYTHON" - "$work/data.csv" "$work/data.db" "$ROWS" <<'PY'
import csv, math, random, sqlite3, sys
out_csv, out_db, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
features = [f"f{j}" for j in range(20)]
weights = [rng.uniform(-1.5, 1.5) if j < 12 else 0.0 for j in range(20)]  # f12..f19: noise
data = []
for i in range(rows):
    x = [round(rng.gauss(0, 1), 4) for _ in features]
    z = 0.3 + sum(w * v for w, v in zip(weights, x))
    data.append(x + [1 if rng.random() < 1 / (1 + math.exp(-z)) else 0])
with open(out_csv, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(features + ["y"])
    w.writerows(data)
db = sqlite3.connect(out_db)
db.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, " + ", ".join(f"{c} REAL" for c in features)
           + ", y INTEGER)")
db.executemany(f"INSERT INTO rows VALUES (?, {', '.join('?' * 21)})",
               [(i, *r) for i, r in enumerate(data)])
db.commit()
db.close()
PY
fi

declare -A skipped=()
ferry_build_type=null
ferry_commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
inference_segments=0
inference_bytes=0
metrics_200=""

# --- nginx --------------------------------------------------------------------------------------
run_nginx() {
  say "nginx (the ceiling)"
  local port dir=$work/nginx
  port=$(free_port)
  mkdir -p "$dir"
  sed -e "s|@PORT@|$port|g" -e "s|@WORK@|$dir|g" "$here/serve/nginx.conf" >"$dir/nginx.conf"
  "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$work/logs/nginx.log" 2>&1 &
  pids+=($!)
  local pid=$!
  wait_ok nginx "$pid" "http://127.0.0.1:$port/ping" "$dir/error.log"
  measure nginx "http://127.0.0.1:$port/invocations"
  stop "$pid"
}

# --- ferry --------------------------------------------------------------------------------------
run_ferry() {
  say "ferry serve"
  [[ -x "$FERRY" ]] || die "no ferry binary at $FERRY; run \`ninja -C build ferry\` (or set FERRY=...)"
  cp "$FERRY" "$work/bin/ferry"
  local ferry=$work/bin/ferry
  # `ferry serve --help` is no test by itself: without a serve command, CLI11 prints the
  # top-level help and exits 0. A serve command's help starts its usage with "ferry serve".
  if ! "$ferry" serve --help 2>&1 | grep -qE '^Usage: [^ ]*ferry serve( |$)'; then
    if "$ferry" --help 2>&1 | grep -qE '^ +serve( |$)'; then
      die "$FERRY lists a serve command but \`ferry serve --help\` does not print its usage"
    fi
    say "  SKIPPED: $FERRY has no \`serve\` command yet (build a ferry with issue 5's serving to measure it)"
    skipped[ferry]="the ferry binary has no serve command"
    return 0
  fi
  local cache
  cache=$(dirname "$FERRY")/CMakeCache.txt
  if [[ -f "$cache" ]]; then
    ferry_build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$cache")
    ferry_build_type=${ferry_build_type:-none}
  fi
  case "$ferry_build_type" in
    Release | RelWithDebInfo) ;;
    *) say "  warning: ferry's build type is '$ferry_build_type', not Release/RelWithDebInfo: do not commit these figures" ;;
  esac

  local proj=$work/project
  mkdir -p "$proj/data" "$proj/sql" "$proj/pipelines"
  cp "$work/data.db" "$proj/data/bench.db"
  cat >"$proj/ferry.yaml" <<'YAML'
name: serve-bench
executor: { kind: local, max_parallel: 2 }
connections:
  bench: sqlite://data/bench.db
YAML
  {
    printf 'SELECT '
    for ((j = 0; j < 20; j++)); do printf 'f%d, ' "$j"; done
    printf 'y FROM rows ORDER BY id\n'
  } >"$proj/sql/rows.sql"
  cat >"$proj/pipelines/train.yaml" <<'YAML'
description: the serving bench's model, a logistic regression on 20 features
steps:
  extract:  { sql: sql/rows.sql, connection: bench }
  features: { transform: extract, ops: [ { split: { test: 0.2, seed: 7, stratify: y } } ] }
  train:    { train: features, model: { type: logistic_regression, target: y }, seed: 7 }
  evaluate: { evaluate: train, on: features.test, gates: { auc: ">= 0.6" } }
  register: { register: evaluate, model: bench, alias: champion }
YAML
  say "  training: ferry run pipelines/train.yaml"
  (cd "$proj" && "$ferry" -C "$proj" run -q pipelines/train.yaml) >"$work/logs/ferry-train.log" 2>&1 ||
    { cat "$work/logs/ferry-train.log" >&2; die "ferry: the training pipeline failed (output above)"; }
  say "  deploying: ferry deploy bench --model bench:champion --wait"
  "$ferry" -C "$proj" deploy bench --model bench:champion --wait >"$work/logs/ferry-deploy.log" 2>&1 ||
    { cat "$work/logs/ferry-deploy.log" >&2; die "ferry: deploy failed (output above)"; }

  local port
  port=$(free_port)
  local args=(-C "$proj" serve --endpoint bench --port "$port" --host 127.0.0.1)
  [[ -n "$FERRY_THREADS" ]] && args+=(--threads "$FERRY_THREADS")
  say "  ferry ${args[*]}"
  "$ferry" "${args[@]}" >"$work/logs/ferry-serve.log" 2>&1 &
  pids+=($!)
  local pid=$!
  wait_ok ferry "$pid" "http://127.0.0.1:$port/ping" "$work/logs/ferry-serve.log"
  wait_ok ferry "$pid" "http://127.0.0.1:$port/ready" "$work/logs/ferry-serve.log"
  measure ferry "http://127.0.0.1:$port/invocations"
  curl -sS --max-time 10 "http://127.0.0.1:$port/metrics" >"$work/logs/ferry.metrics" ||
    die "ferry: GET /metrics failed"
  metrics_200=$("$PYTHON" - "$work/logs/ferry.metrics" <<'PY'
import re, sys
total, seen = 0.0, False
for line in open(sys.argv[1]):
    m = re.match(r'ferry_requests_total\{([^}]*)\}\s+(\S+)', line)
    if m and re.search(r'(^|,)code="200"', m.group(1)) and 'endpoint="bench"' in m.group(1):
        total, seen = total + float(m.group(2)), True
print(int(total) if seen else "")
PY
)
  [[ -n "$metrics_200" ]] ||
    say "  warning: /metrics has no ferry_requests_total{endpoint=\"bench\",code=\"200\"} line"
  stop "$pid"
  # The inference log was on: SIGTERM flushes it, so it must hold committed segments now.
  local seg
  while IFS= read -r -d '' seg; do
    inference_segments=$((inference_segments + 1))
    inference_bytes=$((inference_bytes + $(stat -c %s "$seg")))
  done < <(find "$proj/.ferry/lake/inference/bench" -name '*.jsonl.zst' -print0 2>/dev/null)
  [[ "$inference_segments" -gt 0 ]] || {
    tail -n 30 "$work/logs/ferry-serve.log" >&2
    die "ferry: no inference log segment under the lake's inference/bench/ after serve stopped (log above)"
  }
  say "  inference log: $inference_segments segment(s), $inference_bytes bytes"
}

# --- gunicorn + Flask ---------------------------------------------------------------------------
run_gunicorn_flask() {
  say "gunicorn + Flask + scikit-learn (2 sync workers)"
  "$PYTHON" "$work/bin/flask_app.py" train --csv "$work/data.csv" --out "$work/model.pkl" \
    >"$work/logs/flask-train.log" 2>&1 ||
    { cat "$work/logs/flask-train.log" >&2; die "flask_app.py train failed (output above)"; }
  local port
  port=$(free_port)
  (cd "$work/bin" && FLASK_MODEL=$work/model.pkl exec gunicorn -w 2 -k sync \
    --bind "127.0.0.1:$port" --log-level warning flask_app:app) >"$work/logs/gunicorn.log" 2>&1 &
  pids+=($!)
  local pid=$!
  wait_ok gunicorn_flask "$pid" "http://127.0.0.1:$port/ping" "$work/logs/gunicorn.log"
  measure gunicorn_flask "http://127.0.0.1:$port/invocations"
  stop "$pid"
}

say "serving bench: wrk -t1, ${DURATION}s per measurement, ${WARMUP}s warm-up (load average $load_before)"
for s in $SERVERS; do "run_$s"; done
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

ferry_skip=${skipped[ferry]:-}
"$PYTHON" - "$work" "$OUT" "$root" "$SERVERS" "$DURATION" "$WARMUP" "$ROWS" "$load_before" \
  "$load_after" "$ferry_skip" "$ferry_build_type" "$ferry_commit" "$FERRY_THREADS" \
  "$inference_segments" "$inference_bytes" "$metrics_200" "$NGINX" <<'PY'
import datetime, json, os, platform, re, subprocess, sys

(work, out, root, servers, duration, warmup, rows, load_before, load_after, ferry_skip,
 ferry_build_type, ferry_commit, ferry_threads, inference_segments, inference_bytes, metrics_200,
 nginx) = sys.argv[1:18]
servers = servers.split()

def die(msg):
    print(f"bench/serve.sh: {msg}", file=sys.stderr)
    sys.exit(2)

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}

def ms(value, unit):
    return float(value) * UNITS_MS[unit]

def parse_wrk(path):
    """Requests/sec, the requests count, errors, non-2xx and (with --latency) the percentiles."""
    text = open(path).read()
    r = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not m:
        die(f"no Requests/sec line in wrk's output {os.path.basename(path)}:\n{text}")
    r["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)", text, re.M)
    r["mean_ms"] = ms(*m.groups()) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["socket_errors"] = dict(zip(["connect", "read", "write", "timeout"],
                                  map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non_2xx"] = int(m.group(1)) if m else 0
    pct = {}
    for p, v, u in re.findall(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        pct[float(p)] = ms(v, u)
    r["percentiles_ms"] = pct
    return r

results = {}
for name in servers:
    if name == "ferry" and ferry_skip:
        continue
    c64 = parse_wrk(f"{work}/logs/{name}.c64")
    c1 = parse_wrk(f"{work}/logs/{name}.c1")
    if 99.0 not in c1["percentiles_ms"]:
        die(f"{name}: no 99% line in wrk --latency's output (logs/{name}.c1)")
    for label, r in (("c64", c64), ("c1", c1)):
        if r["non_2xx"]:
            die(f"{name}: {r['non_2xx']} non-2xx responses at {label}: the figures would not be of predictions")
    results[name] = {
        "rps_c64": round(c64["rps"], 1),
        "p99_ms_c1": round(c1["percentiles_ms"][99.0], 4),
        "p50_ms_c1": round(c1["percentiles_ms"].get(50.0, float("nan")), 4),
        "p90_ms_c1": round(c1["percentiles_ms"].get(90.0, float("nan")), 4),
        "rps_c1": round(c1["rps"], 1),
        "mean_ms_c64": c64["mean_ms"],
        "requests": {"c64": c64["requests"], "c1": c1["requests"]},
        "socket_errors": {"c64": c64["socket_errors"], "c1": c1["socket_errors"]},
    }
if "ferry" in results:
    results["ferry"]["inference_log"] = {"segments": int(inference_segments),
                                         "bytes": int(inference_bytes)}
    results["ferry"]["metrics_requests_200"] = int(metrics_200) if metrics_200 else None
    results["ferry"]["threads"] = int(ferry_threads) if ferry_threads else "default"

def ratio(a, b):
    if a not in results or b not in results:
        return None
    return round(results[a]["rps_c64"] / results[b]["rps_c64"], 4)

targets = {"fraction_of_nginx": 0.6, "vs_gunicorn": 30, "p99_ms_c1": 0.5}
fraction = ratio("ferry", "nginx")
vs_gunicorn = ratio("ferry", "gunicorn_flask")
p99 = results["ferry"]["p99_ms_c1"] if "ferry" in results else None
met = {"fraction_of_nginx": None if fraction is None else fraction >= targets["fraction_of_nginx"],
       "vs_gunicorn": None if vs_gunicorn is None else vs_gunicorn >= targets["vs_gunicorn"],
       "p99_ms_c1": None if p99 is None else p99 <= targets["p99_ms_c1"]}

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass

def version(cmd, pattern=None):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        text = (p.stdout + p.stderr).strip()
    except Exception:
        return "unknown"
    if pattern:
        m = re.search(pattern, text)
        return m.group(1) if m else "unknown"
    return text.splitlines()[0] if text else "unknown"

versions = {"wrk": version(["wrk", "-v"], r"wrk (\S+)"), "ferry_commit": ferry_commit}
if "nginx" in servers:
    versions["nginx"] = version([nginx, "-v"], r"nginx/(\S+)")
if "gunicorn_flask" in servers:
    versions["gunicorn"] = version(["gunicorn", "--version"], r"(\d+\.\d+\.\d+)")
    versions["flask"] = version([sys.executable, "-c", "import importlib.metadata as m; print(m.version('flask'))"])
    versions["sklearn"] = version([sys.executable, "-c", "import sklearn; print(sklearn.__version__)"])
    versions["python"] = platform.python_version()

result = {
    "bench": "serve",
    "nginx": results.get("nginx"),
    "ferry": results.get("ferry"),
    "gunicorn_flask": results.get("gunicorn_flask"),
    "fraction_of_nginx": fraction,
    "speedup": {"vs_gunicorn": vs_gunicorn},
    "p99_ms_c1": p99,
    "targets": targets,
    "met": met,
    "skipped": {"ferry": ferry_skip} if ferry_skip else {},
    "load": {"wrk_threads": 1, "connections_throughput": 64, "connections_latency": 1,
             "duration_s": int(duration), "warmup_s": int(warmup),
             "request": "POST /invocations, one row of 20 features (bench/serve/request.json)"},
    "rows": int(rows),
    "ferry_build_type": None if ferry_build_type == "null" else ferry_build_type,
    "versions": versions,
    "machine": {"cores": os.cpu_count(), "model name": cpu, "kernel": platform.release(),
                "loadavg_before": load_before, "loadavg_after": load_after},
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out)

names = {"nginx": "nginx (fixed body)", "ferry": "ferry serve",
         "gunicorn_flask": "gunicorn + Flask (2 sync)"}
print(f"\nServing one row of 20 features per request: wrk -t1, {duration}s each, "
      f"{os.cpu_count()} cores ({cpu})\n")
print(f"  {'server':<27} {'req/s c=64':>11} {'p50 ms c=1':>11} {'p99 ms c=1':>11} {'req/s c=1':>10}")
for name in ["nginx", "ferry", "gunicorn_flask"]:
    if name in results:
        r = results[name]
        print(f"  {names[name]:<27} {r['rps_c64']:>11,.0f} {r['p50_ms_c1']:>11.3f} "
              f"{r['p99_ms_c1']:>11.3f} {r['rps_c1']:>10,.0f}")
    elif name == "ferry" and ferry_skip:
        print(f"  {names[name]:<27} skipped: {ferry_skip}")
print()

def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "MISSED")
if fraction is not None:
    print(f"  ferry = {fraction:.2f} of nginx's req/s (target >= 0.6: {verdict(met['fraction_of_nginx'])})")
if vs_gunicorn is not None:
    print(f"  ferry = {vs_gunicorn:.1f}x gunicorn+Flask's req/s (target >= 30x: {verdict(met['vs_gunicorn'])})")
if p99 is not None:
    print(f"  ferry p99 at c=1 = {p99:.3f} ms (target <= 0.5 ms: {verdict(met['p99_ms_c1'])})")
for name, r in results.items():
    errors = sum(sum(v.values()) for v in r["socket_errors"].values())
    if errors:
        print(f"  warning: {name}: wrk counted socket errors {r['socket_errors']}")
try:
    busy = float(load_before.split()[0]) > 0.5 * os.cpu_count()
except ValueError:
    busy = False
if busy:
    print(f"  warning: load average was {load_before} before the bench ({os.cpu_count()} cores): "
          "other work competed for the CPUs, the figures are noisy")
print(f"\nwrote {os.path.relpath(out, root) if out.startswith(root) else out}")
PY
