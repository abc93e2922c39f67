#!/usr/bin/env bash
# System packages the test suite needs besides Python, checked (and installed if we may) by `make test`:
#   chromium    /usr/bin/chromium, driven by the browser test (tests/test_browser.py)
#   postgresql  pg_ctl and initdb under /usr/lib/postgresql/*/bin, for tests against a real server
#
#   .ci/system-deps.sh          install what is missing with apt-get when running as root; otherwise
#                               print the one command to run and exit 1 (so make stops before pytest)
#   .ci/system-deps.sh --check  only report what is missing (exit 1 if anything is); installs nothing
#
# SYSTEM_DEPS_ROOT prefixes every path looked at (tests point it at an empty folder).
set -euo pipefail

mode=install
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
root="${SYSTEM_DEPS_ROOT:-}"

have_postgresql() {
    local bin bins=("$root"/usr/lib/postgresql/*/bin)
    # Outside tests, also where pg_config says the binaries are (a server built or installed elsewhere);
    # tests/fixtures/pgcluster.py looks in the same places.
    if [ -z "$root" ] && command -v pg_config >/dev/null 2>&1; then
        bins+=("$(pg_config --bindir 2>/dev/null || true)")
    fi
    for bin in "${bins[@]}"; do
        [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/initdb" ] && return 0
    done
    return 1
}

missing_packages() {
    local missing=()
    [ -x "$root/usr/bin/chromium" ] || missing+=(chromium)
    have_postgresql || missing+=(postgresql)
    echo "${missing[*]}"
}

missing="$(missing_packages)"
if [ -z "$missing" ]; then
    echo "system-deps: chromium and postgresql are installed"
    exit 0
fi
command="sudo apt-get update && sudo apt-get install -y $missing"
if [ "$mode" = check ]; then
    echo "system-deps: missing Debian package(s): $missing; install with: $command"
    exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: the tests need Debian package(s) $missing, which are not installed and cannot be" \
         "installed from here; run: $command" >&2
    exit 1
fi
echo "system-deps: installing $missing with apt-get"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # one word per package
apt-get update -qq && apt-get install -y -qq $missing >/dev/null
still="$(missing_packages)"
if [ -n "$still" ]; then
    echo "system-deps: apt-get finished but $still is still missing; run: $command" >&2
    exit 1
fi
echo "system-deps: installed $missing"
