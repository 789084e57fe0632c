#!/usr/bin/env bash
# Scheduler overhead: the same DAG of N no-op tasks run by ferry, by `make -j2` and by snakemake.
#
#   bench/scheduler.sh                 # N=1000 tasks, REPEAT=3 runs of each, median reported
#   N=200 REPEAT=5 bench/scheduler.sh  # smaller / more runs
#   make bench                         # installs snakemake + hyperfine first, builds, runs this
#
# Two shapes: a chain (t_i needs t_{i-1}) and a fan-out (a root, N-2 tasks needing it, a sink
# needing them all). Every task runs one trivial program (`true`), two at a time in every tool.
# ferry starts each run on a fresh state store and lake (nothing is a cache hit) with its normal
# persistence: every task transition in SQLite, every task's output committed in the lake.
# Timing is wall clock of the whole command, by hyperfine. Prints a table and writes
# bench/results/scheduler.json (schema: bench/README.md). Exits 0 when targets are missed (they
# are reported), non-zero when a tool fails or is missing.
set -euo pipefail

N=${N:-1000}
REPEAT=${REPEAT:-3}
PARALLEL=2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
FERRY=${FERRY:-$root/build/ferry}
OUT=${OUT:-$here/results/scheduler.json}

die() { echo "bench/scheduler.sh: $*" >&2; exit 2; }
say() { echo "$*" >&2; }

[[ "$N" =~ ^[0-9]+$ && "$N" -ge 3 ]] || die "N must be an integer >= 3 (got '$N')"
[[ "$REPEAT" =~ ^[0-9]+$ && "$REPEAT" -ge 1 ]] || die "REPEAT must be an integer >= 1 (got '$REPEAT')"
[[ -x "$FERRY" ]] || die "no ferry binary at $FERRY; run \`make build\` (or set FERRY=...)"
FERRY=$(cd "$(dirname "$FERRY")" && pwd)/$(basename "$FERRY")
for tool in hyperfine make snakemake python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed; run \`scripts/install-deps.sh --bench\`"
done

build_type=unknown
if [[ -f "$(dirname "$FERRY")/CMakeCache.txt" ]]; then
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$(dirname "$FERRY")/CMakeCache.txt")
  build_type=${build_type:-none}
fi
case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) say "warning: ferry build type is '$build_type', not Release/RelWithDebInfo: do not commit these figures" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-scheduler.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/timings" "$work/logs" "$work/bin" "$work/trash"
# Between timed runs each tool's previous output is moved aside, not deleted: it is deleted with
# the temp dir once everything is timed. On ext4 a file created within seconds of many deletions
# is slow to allocate (the allocator skips recently freed inodes), so deleting the last run's
# ~11,000 files right before the next run made that run pay for the harness's clean-up.
cat >"$work/bin/set-aside" <<'SH'
#!/bin/sh
# set-aside PATH...: moves each existing PATH into the bench's trash folder under a fresh name.
trash=$(dirname "$0")/../trash
for p in "$@"; do
  [ -e "$p" ] && mv "$p" "$(mktemp -d "$trash/run.XXXXXX")/"
done
exit 0
SH
chmod +x "$work/bin/set-aside"
# A private copy of the binary: a rebuild during the bench cannot mix two versions in one table.
cp "$FERRY" "$work/bin/ferry"
ferry_src=$(realpath --relative-to="$root" "$FERRY")  # no machine paths in the results
ferry_built=$(date -u -r "$ferry_src" +%Y-%m-%dT%H:%M:%SZ)
ferry_commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
FERRY=$work/bin/ferry

# --- The DAGs, in each tool's language ------------------------------------------------------
python3 - "$work" "$N" "$PARALLEL" <<'PY'
import os, sys

work, n, par = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def dags():
    """name -> list of (task, [needs]) in topological order."""
    chain = [(f"t{i}", [f"t{i-1}"] if i else []) for i in range(n)]
    mids = [f"m{i}" for i in range(1, n - 1)]
    fanout = [("root", [])] + [(m, ["root"]) for m in mids] + [("sink", mids)]
    return {"chain": chain, "fanout": fanout, "one": [("t0", [])]}

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)

for name, dag in dags().items():
    # ferry: one project per DAG; `command: "true"` runs /usr/bin/true directly (no shell).
    lines = [f"# {len(dag)} no-op tasks ({name})", "steps:"]
    for task, needs in dag:
        lines.append(f"  {task}:")
        lines.append('    command: "true"')
        if needs:
            lines.append(f"    needs: [{', '.join(needs)}]")
    write(f"{work}/ferry/{name}/pipelines/{name}.yaml", "\n".join(lines) + "\n")
    write(f"{work}/ferry/{name}/ferry.yaml",
          f"name: bench-{name}\nexecutor:\n  kind: local\n  max_parallel: {par}\n")

    # make: phony targets (they always run), each recipe one `true` (run without a shell).
    last = dag[-1][0]
    lines = [f".PHONY: all {' '.join(t for t, _ in dag)}", f"all: {last}"]
    for task, needs in dag:
        lines.append(f"{task}: {' '.join(needs)}".rstrip())
        lines.append("\t@true")
    write(f"{work}/make/{name}/Makefile", "\n".join(lines) + "\n")

    # snakemake: one explicit rule per task (the same DAG, spelled out as for ferry and make);
    # snakemake needs files, so each job runs `true` and snakemake touches its output.
    out = lambda t: f'"out/{t}"'
    lines = ["import sys", "sys.setrecursionlimit(100000)  # its DAG walk recurses along the chain",
             "", f"rule all:\n    input: {out(last)}", ""]
    for task, needs in dag:
        lines.append(f"rule {task}:")
        if needs:
            lines.append(f"    input: {', '.join(out(x) for x in needs)}")
        lines.append(f"    output: touch({out(task)})")
        lines.append('    shell: "true"')
        lines.append("")
    write(f"{work}/snakemake/{name}/Snakefile", "\n".join(lines))
PY

# --- Timing ----------------------------------------------------------------------------------
# measure KEY DIR PREPARE CMD: REPEAT timed runs of CMD in DIR, PREPARE before each (untimed).
measure() {
  local key=$1 dir=$2 prepare=$3 cmd=$4
  say "  $key: $REPEAT run(s) of \`$cmd\`"
  if ! (cd "$dir" && hyperfine -N --style basic --runs "$REPEAT" --prepare "$prepare" \
          --output "$work/logs/$key.out" --export-json "$work/timings/$key.json" "$cmd" \
          >"$work/logs/$key.hyperfine" 2>&1); then
    cat "$work/logs/$key.hyperfine" >&2
    [[ -f "$work/logs/$key.out" ]] && tail -n 30 "$work/logs/$key.out" >&2
    die "$key failed (output above)"
  fi
}

# check_ferry SHAPE: the last timed run really ran and persisted all N tasks.
check_ferry() {
  local shape=$1 tasks=$2
  python3 - "$work/ferry/$shape" "$tasks" "$work/timings/ferry_$shape.check.json" <<'PY' || die "ferry $1: the run's persisted state is not what it should be"
import json, os, sqlite3, sys
proj, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
db = sqlite3.connect(f"file:{proj}/.ferry/state.db?mode=ro", uri=True)
(run_id, state), = db.execute("SELECT id, state FROM pipeline_runs").fetchall()
q = lambda sql, *a: db.execute(sql, a).fetchone()[0]
res = {
    "run_state": state,
    "tasks_succeeded": q("SELECT count(*) FROM task_runs WHERE run_id=? AND state='succeeded'", run_id),
    "task_events": q("SELECT count(*) FROM events WHERE kind='TaskRun'"),
    "tasks_with_queued_running_succeeded_events": q(
        "SELECT count(*) FROM (SELECT resource FROM events WHERE kind='TaskRun' AND to_state IN "
        "('queued','running','succeeded') GROUP BY resource HAVING count(DISTINCT to_state)=3)"),
    "checkpoints": q("SELECT count(*) FROM checkpoints WHERE run_id=?", run_id),
    "manifests": sum("manifest.json" in files for _, _, files in os.walk(f"{proj}/.ferry/lake/runs")),
}
json.dump(res, open(out, "w"))
bad = [k for k in ("tasks_succeeded", "tasks_with_queued_running_succeeded_events", "checkpoints", "manifests") if res[k] != n]
if state != "succeeded" or bad:
    print(f"{proj}: {res}", file=sys.stderr)
    sys.exit(1)
PY
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
say "scheduler bench: N=$N tasks, $REPEAT run(s) each, $PARALLEL at a time; work dir $work"
for shape in one chain fanout; do
  tasks=$N
  [[ $shape == one ]] && tasks=1
  measure "ferry_$shape" "$work/ferry/$shape" "$work/bin/set-aside .ferry" \
    "$FERRY run -q pipelines/$shape.yaml"
  check_ferry "$shape" "$tasks"
  measure "make_$shape" "$work/make/$shape" "true" "make -j$PARALLEL -s -f Makefile all"
  measure "snakemake_$shape" "$work/snakemake/$shape" "$work/bin/set-aside out .snakemake" \
    "snakemake --snakefile Snakefile --cores $PARALLEL --quiet"
done

# --- Report ----------------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
mkdir -p "$(dirname "$OUT")"
python3 - "$work" "$N" "$REPEAT" "$PARALLEL" "$OUT" "$build_type" "$FERRY" "$root" \
  "$load_before" "$load_after" "$ferry_src" "$ferry_built" "$ferry_commit" <<'PY'
import datetime, hashlib, json, os, platform, statistics, subprocess, sys

work, n, repeat, par, out, build_type, ferry, root, load_before, load_after, ferry_src, ferry_built, \
    ferry_commit = sys.argv[1:14]
n, repeat, par = int(n), int(repeat), int(par)

def times(key):
    with open(f"{work}/timings/{key}.json") as f:
        return json.load(f)["results"][0]["times"]

def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=root).stdout.strip().splitlines()[0]
    except Exception:
        return "unknown"

tools, shapes = ("ferry", "make", "snakemake"), ("chain", "fanout")
runs = {f"{t}_{s}": times(f"{t}_{s}") for t in tools for s in shapes}
wall = {k: statistics.median(v) for k, v in runs.items()}
startup = {t: statistics.median(times(f"{t}_one")) for t in tools}
ms_per_task = {k: 1000 * v / n for k, v in wall.items()}
speedup = {f"vs_{t}_{s}": wall[f"{t}_{s}"] / wall[f"ferry_{s}"] for t in ("make", "snakemake") for s in shapes}
targets = {}
for s in shapes:
    targets[f"within_2x_of_make_{s}"] = wall[f"ferry_{s}"] <= 2 * wall[f"make_{s}"]
    targets[f"3x_faster_than_snakemake_{s}"] = wall[f"snakemake_{s}"] >= 3 * wall[f"ferry_{s}"]
checks = {s: json.load(open(f"{work}/timings/ferry_{s}.check.json")) for s in shapes}

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
fs = first_line(["sh", "-c", f"df -PT '{work}' | awk 'NR==2 {{print $2}}'"])

result = {
    "bench": "scheduler",
    "tasks": n,
    "repeat": repeat,
    "parallel": par,
    "statistic": "median",
    "wall_s": wall,
    "ms_per_task": ms_per_task,
    "startup_s": startup,
    "speedup": speedup,
    "targets": {"within_2x_of_make": "speedup vs make >= 0.5",
                "3x_faster_than_snakemake": "speedup vs snakemake >= 3"},
    "targets_met": targets,
    "runs_s": runs,
    "ferry_persisted": checks,
    "ferry_build_type": build_type,
    "ferry_binary": {
        "path": ferry_src,
        "sha256": hashlib.sha256(open(ferry, "rb").read()).hexdigest()[:16],
        "built": ferry_built,
    },
    "versions": {
        "ferry_commit": ferry_commit,
        "make": first_line(["make", "--version"]),
        "snakemake": first_line(["snakemake", "--version"]),
        "hyperfine": first_line(["hyperfine", "--version"]),
    },
    "machine": {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "tmp_fs": fs,
                "loadavg_before": load_before, "loadavg_after": load_after},
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out)

label = {"ferry": "ferry", "make": f"make -j{par}", "snakemake": f"snakemake --cores {par}"}
print(f"\nscheduler overhead: {n} no-op tasks, {par} at a time, median of {repeat} run(s); "
      f"ferry {build_type}, {os.cpu_count()} cores, work dir on {fs}\n")
print(f"  {'DAG':<8} {'tool':<22} {'wall s':>9} {'ms/task':>9} {'ferry speedup':>14}  target")
for s in shapes:
    for t in tools:
        k = f"{t}_{s}"
        if t == "ferry":
            sp, tgt = "", ""
        else:
            sp = f"{speedup[f'vs_{k}']:.2f}x"
            if t == "make":
                tgt = f"ferry within 2x of make (>= 0.50x): {'met' if targets[f'within_2x_of_make_{s}'] else 'MISSED'}"
            else:
                tgt = f"ferry >= 3x faster (>= 3.00x): {'met' if targets[f'3x_faster_than_snakemake_{s}'] else 'MISSED'}"
        name = "fan-out" if s == "fanout" else s
        print(f"  {name:<8} {label[t]:<22} {wall[k]:>9.3f} {ms_per_task[k]:>9.2f} {sp:>14}  {tgt}")
    print()
print("  start-up (a 1-task DAG): " +
      ", ".join(f"{label[t]} {startup[t]:.3f} s" for t in tools))
print("  ms/task = wall / tasks (start-up included); speedup = tool's wall / ferry's wall")
print(f"  ferry persisted every task: " + "; ".join(
    f"{s}: {c['tasks_succeeded']} succeeded, {c['task_events']} task events, "
    f"{c['checkpoints']} checkpoints, {c['manifests']} manifests" for s, c in checks.items()))
try:
    busy = float(load_before.split()[0]) > 0.5 * os.cpu_count()
except ValueError:
    busy = False
if busy:
    print(f"  warning: load average was {load_before} before the bench ({os.cpu_count()} cores): "
          "other work competed for the CPUs, the figures are noisy")
print(f"\nwrote {os.path.relpath(out, root) if out.startswith(root) else out}")
PY
