#!/usr/bin/env bash
# Install what the tests and the demo need from the distribution: a PostgreSQL server
# (started by the tests in a temporary data dir, never as a system service), kubectl, and
# Chromium with its driver for the web view's browser tests (headless, no download), and
# Prometheus for promtool (the chart's alert rules are tested with it).
# Anything already present is left alone; on a machine without apt, say what is missing.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
[ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: please install: ${missing[*]} (PostgreSQL server binaries, kubectl, chromium, chromedriver, prometheus)" >&2
  exit 1
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-system-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
