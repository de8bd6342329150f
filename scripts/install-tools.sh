#!/usr/bin/env bash
# Installs the command-line tools the tests and benchmarks compare against:
# age, minisign, openssl, gpg, Graphviz and the PostgreSQL server binaries (apt), dosfstools
# and fusefat for the tests on a real FAT filesystem (tests/fat_fixtures.py), and
# the reference JavaScript age (npm "age-encryption", the only implementation of the
# post-quantum age1pq1 type that installs here) under $AGE_JS_DIR, and SoftHSM2 (a
# software PKCS#11 token for the key store tests), poppler-utils, libnss3-tools and
# zbar-tools (signed PDFs checked with pdfsig, pdftoppm and zbarimg).
# With --demo, only what `sandi demo` checks its files with (age, minisign).
# Uses apt (as root, or through sudo); does nothing for tools already present.
set -euo pipefail

AGE_JS_DIR="${AGE_JS_DIR:-/opt/sandi-tools/age-js}"
AGE_JS_VERSION=0.3.1

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
command -v bsdtar >/dev/null 2>&1 || need+=(libarchive-tools)
command -v mkfs.vfat >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.vfat ] || need+=(dosfstools)
command -v fusefat >/dev/null 2>&1 || need+=(fusefat)
command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then need+=(postgresql); fi
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
# signed PDFs (tests/test_pdf.py): pdfsig/pdftoppm, NSS's certutil, zbarimg
command -v pdfsig >/dev/null 2>&1 || need+=(poppler-utils)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
command -v zbarimg >/dev/null 2>&1 || need+=(zbar-tools)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -f "$AGE_JS_DIR/node_modules/age-encryption/package.json" ] ||
   ! grep -q "\"version\": \"$AGE_JS_VERSION\"" "$AGE_JS_DIR/node_modules/age-encryption/package.json"; then
    echo "installing: age-encryption@$AGE_JS_VERSION (npm) in $AGE_JS_DIR" >&2
    $SUDO mkdir -p "$AGE_JS_DIR"
    $SUDO npm install --silent --no-audit --no-fund --prefix "$AGE_JS_DIR" "age-encryption@$AGE_JS_VERSION" >/dev/null
fi
