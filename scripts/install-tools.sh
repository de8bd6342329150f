#!/usr/bin/env bash
# Installs the command-line tools the tests and benchmarks compare against:
# age, minisign, openssl, gpg, Graphviz and the PostgreSQL server binaries.
# With --demo, only what `sandi demo` checks its files with (age, minisign).
# Uses apt (as root, or through sudo); does nothing for tools already present.
set -euo pipefail

need=()
command -v age >/dev/null 2>&1 || need+=(age)
command -v minisign >/dev/null 2>&1 || need+=(minisign)
if [ "${1:-}" = "--demo" ]; then
    if [ ${#need[@]} -eq 0 ]; then exit 0; fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    echo "installing: ${need[*]}" >&2
    $SUDO apt-get update -qq
    exec $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v tar >/dev/null 2>&1 || need+=(tar)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then need+=(postgresql); fi

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "installing: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
