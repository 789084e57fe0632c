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
echo "state: $here/$1/.ferry/state.db   lake: $here/$1/.ferry/lake"
echo "try:   cd $1 && $ferry runs && $ferry show <run-id>"
