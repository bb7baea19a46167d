#!/usr/bin/env bash
# Unpacks the MTAs of the bounce lab (tests/inbound/lab/) from Debian's packages into a cache folder:
# Exim, OpenSMTPD, Sendmail, DMA and Courier conflict with each other and with the installed Postfix as
# the system's mail-transport-agent, so they are never installed (Courier's authlib neither: its
# postinst adds a system user) — `apt-get download` + `dpkg -x`, one folder each, with the package
# version in VERSION. Installs the libraries they link against (and m4, for Sendmail's .mc files). Run
# as root; a package already unpacked at the candidate version is left as it is.
# Usage: bash scripts/lab_mtas.sh   (cache: $MAILFLOW_LAB_MTAS, default /var/cache/mailflow-lab)
set -euo pipefail
CACHE="${MAILFLOW_LAB_MTAS:-/var/cache/mailflow-lab}"
PACKAGES=(exim4-daemon-light opensmtpd sendmail-bin sendmail-cf dma courier-mta courier-base courier-authlib)
# Their dependencies that would make them (or another MTA) installed after all, or that only postinst
# scripts use: everything else they depend on (libraries, m4) is installed.
SKIP_DEPENDS='^(exim4-base|exim4-config|sendmail-base|sendmail-bin|sendmail-cf|debconf|debconf-2.0|adduser|ed|lsb-base|procps|init-system-helpers|ucf|courier-base|courier-authlib|courier-authdaemon|courier-authlib-userdb|gnutls-bin|wget|sysvinit-utils|init-d-script)$'

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }

if [ -z "$(candidate "${PACKAGES[0]}")" ] || [ "$(candidate "${PACKAGES[0]}")" = "(none)" ]; then
  apt-get update -qq
fi
mkdir -p "$CACHE"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chown _apt "$work" 2>/dev/null || chmod 777 "$work"  # apt-get download runs as _apt and writes here
depends=()
for pkg in "${PACKAGES[@]}"; do
  version="$(candidate "$pkg")"
  if [ ! -f "$CACHE/$pkg/VERSION" ] || [ "$(cat "$CACHE/$pkg/VERSION")" != "$version" ]; then
    echo "== unpacking $pkg $version into $CACHE/$pkg"
    (cd "$work" && apt-get download -qq "$pkg=$version")
    rm -rf "$CACHE/$pkg"
    dpkg -x "$work/${pkg}_"*.deb "$CACHE/$pkg"
    dpkg-deb -f "$work/${pkg}_"*.deb Depends > "$CACHE/$pkg/DEPENDS"
    echo "$version" > "$CACHE/$pkg/VERSION"
  fi
  # "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0" -> the first of each alternative, no version.
  while read -r dep; do
    [ -n "$dep" ] && ! [[ "$dep" =~ $SKIP_DEPENDS ]] && depends+=("$dep")
  done < <(tr ',' '\n' < "$CACHE/$pkg/DEPENDS" | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g')
done
need=()
for dep in $(printf '%s\n' "${depends[@]}" | sort -u); do
  dpkg -s "$dep" >/dev/null 2>&1 || need+=("$dep")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing what the lab's MTAs link against: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
