#!/usr/bin/env bash
# Install every Debian package that building, testing and the demo of fdod need.
# Idempotent and non-interactive; a quick no-op when everything is present.
set -euo pipefail

PACKAGES=(
  build-essential gcc-12 g++-12 pkg-config
  libdw-dev libelf-dev elfutils
  liblmdb-dev lmdb-utils
  libnng-dev libmicrohttpd-dev
  libprotobuf-c-dev protobuf-c-compiler
  libgrpc-dev python3-grpcio
  libcapstone-dev
  clang-16 llvm-16 lld-16 libclang-rt-16-dev clang-format-16
  bolt-16 libbolt-16-dev
  libc6-dbg binutils
  python3 python3-pytest python3-protobuf protobuf-compiler
  linux-perf
  zlib1g-dev openssl libssl-dev curl debuginfod libdebuginfod-dev libcurl4-gnutls-dev
  chromium valgrind iproute2 util-linux
  golang-go
)

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg-query is fast; only fall back to apt-get for what is missing.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
