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
  clickhouse-server clickhouse-client
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

# clickhouse-server's postinst enables and starts a system-wide server
# (ports 8123/9000/9009, /var/lib/clickhouse) unless policy-rc.d forbids
# it. The tests start private servers on free ports and never use it, so
# a server we just installed is stopped and disabled: it would only hold
# memory and ports. A server that was installed before is left alone.
if [[ " ${missing[*]} " == *" clickhouse-server "* ]]; then
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
  else
    $SUDO invoke-rc.d clickhouse-server stop >/dev/null 2>&1 || true
    $SUDO update-rc.d clickhouse-server disable >/dev/null 2>&1 || true
  fi
fi
echo "install-deps: done" >&2
