#!/usr/bin/env bash
# Debian packages the demo and the tests need: the Fashion-MNIST files for the demo,
# chromium for the web UI's end-to-end tests (Playwright drives /usr/bin/chromium) and
# PostgreSQL's programs for the tests on PostgreSQL (they start a server of their own;
# nothing here starts one). PostgreSQL is optional: if it cannot be installed, its
# tests are skipped and say why.
# Uses sudo when not root; skips what is already installed.
set -euo pipefail

packages=()
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || packages+=(chromium)
postgres=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || postgres+=(postgresql)
[ ${#packages[@]} -eq 0 ] && [ ${#postgres[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Not a Debian-based system: install ${packages[*]} ${postgres[*]} by hand, or" \
       "pass --source to 'pigeonhole demo' with a folder of the Fashion-MNIST IDX files." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
install() {
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
$sudo apt-get update -qq
[ ${#packages[@]} -eq 0 ] || install "${packages[@]}"
if [ ${#postgres[@]} -gt 0 ] && ! install "${postgres[@]}"; then
  echo "Warning: could not install Debian's postgresql; the PostgreSQL tests will be" \
       "skipped." >&2
fi
