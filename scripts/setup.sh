#!/usr/bin/env bash
# Installs everything ferry's tests need: the Debian peers (when run as root on Debian) and the npm
# packages (npm ci, which also builds ferry). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PEERS=(skopeo umoci oci-image-tool podman buildah docker.io containerd busybox-static jq zstd xz-utils bzip2 uidmap time python3 tar chromium docker-registry apache2-utils openssl curl)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${PEERS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # docker-registry's package would start a registry on :5000 on every interface: tests start their
    # own on loopback, so no package may start a service here (policy-rc.d 101 = "not allowed").
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      guard=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' > "$guard" && chmod 755 "$guard"
    fi
    status=0
    apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
    if [ -n "$guard" ]; then rm -f "$guard"; fi
    [ "$status" = 0 ] || exit "$status"
  fi
else
  echo "setup: not root on Debian: skipping the Debian peers (their tests will say skipped)" >&2
fi

npm ci --no-audit --no-fund
