#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those missing (idempotent).
#   scripts/install-deps.sh           build + tests
#   scripts/install-deps.sh --bench   also the baselines of bench/ (snakemake, hyperfine)
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache make
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libsqlite3-dev libcli11-dev libfmt-dev
  libssl-dev libgtest-dev libgmock-dev libzstd-dev libfast-float-dev libpq-dev
  postgresql zstd python3-pandas python3-zstandard libeigen3-dev libxgboost-dev
  python3-sklearn python3-xgboost libboost-dev
  python3 procps
)
if [[ "${1:-}" == "--bench" ]]; then
  packages=(snakemake hyperfine make python3)
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
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
