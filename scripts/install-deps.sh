#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those missing (idempotent).
#   scripts/install-deps.sh           build + tests
#   scripts/install-deps.sh --bench   also the baselines of bench/ (snakemake, hyperfine, wrk,
#                                     nginx, gunicorn + Flask + scikit-learn, pandas)
# nginx and prometheus are Debian packages that start a system service (nginx on port 80) when
# installed; the benches and tests start their own instances on loopback ports instead, so the
# install runs with a temporary /usr/sbin/policy-rc.d that forbids starting services (unless one
# is already there, which is then left alone).
# chromium (headless, for the report.html test) works without its recommended packages; the fonts
# it draws text with come with its fontconfig dependency.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache make
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libsqlite3-dev libcli11-dev libfmt-dev
  libssl-dev libgtest-dev libgmock-dev libzstd-dev libfast-float-dev libpq-dev libsimdjson-dev
  postgresql zstd python3-pandas python3-zstandard libeigen3-dev libxgboost-dev
  python3-sklearn python3-xgboost libboost-dev libspdlog-dev python3-numpy python3-scipy
  python3 procps
  prometheus
  chromium
)
if [[ "${1:-}" == "--bench" ]]; then
  packages=(snakemake hyperfine make python3 wrk nginx-light gunicorn python3-flask python3-sklearn python3-pandas)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  # Exit status 101 of policy-rc.d = "action forbidden": invoke-rc.d starts no service.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null
  $sudo chmod 755 $policy
  trap '$sudo rm -f $policy' EXIT
fi
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
