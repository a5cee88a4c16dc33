#!/usr/bin/env bash
# Debian packages the demo and the tests need: the Fashion-MNIST files for the demo,
# chromium for the web UI's end-to-end tests (Playwright drives /usr/bin/chromium) and
# PostgreSQL's programs for the tests on PostgreSQL (they start a server of their own;
# nothing here starts one).
# Uses sudo when not root; skips what is already installed.
set -euo pipefail

packages=()
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || packages+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
[ ${#packages[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Not a Debian-based system: install ${packages[*]} by hand, or pass" \
       "--source to 'pigeonhole demo' with a folder of the Fashion-MNIST IDX files." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
