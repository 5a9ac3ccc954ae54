#!/usr/bin/env bash
# install-deps.sh - install every build and test dependency of Sluice from Debian 12 packages.
#
# Idempotent: when every package is already installed (checked with dpkg-query) it changes
# nothing and needs no privileges. Otherwise it runs `apt-get update` once and installs the
# missing packages, through sudo when not root. Used by tests/run and .ci/run, so a fresh
# machine needs only this repository.
#
# Usage: deploy/install-deps.sh [--check]
#   --check   only report missing packages; exit 1 if any are missing.
set -euo pipefail

PACKAGES=(
	meson ninja-build pkg-config gcc
	libibverbs-dev librdmacm-dev liburing-dev librocksdb-dev
	libfuse3-dev fuse3 libprotobuf-c-dev protobuf-c-compiler libisal-dev libssl-dev
	fio iproute2 clang-format python3
)

die() {
	echo "install-deps: $*" >&2
	exit 1
}

check_only=0
case "${1:-}" in
--check) check_only=1 ;;
"") ;;
-h | --help)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument '$1' (try --help)" ;;
esac

# Debian (or a derivative) with apt and dpkg is the only supported platform.
if [[ ! -r /etc/os-release ]] || ! command -v dpkg-query >/dev/null 2>&1 ||
	! command -v apt-get >/dev/null 2>&1; then
	die "this script needs Debian 12 (bookworm) with apt-get and dpkg-query; on other systems install the equivalents of: ${PACKAGES[*]}"
fi
# shellcheck disable=SC1091
. /etc/os-release
if [[ "${ID:-}" != debian && " ${ID_LIKE:-} " != *" debian "* ]]; then
	die "unsupported distribution '${ID:-unknown}': this script installs Debian packages (${PACKAGES[*]})"
fi
if [[ "${ID:-}" == debian && "${VERSION_ID:-}" != 12 ]]; then
	echo "install-deps: warning: tested on Debian 12, this is Debian ${VERSION_ID:-unknown}" >&2
fi

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [[ "$status" != "install ok installed" ]]; then
		missing+=("$p")
	fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi
if [[ $check_only -eq 1 ]]; then
	echo "install-deps: missing: ${missing[*]}"
	exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 || die "not root and sudo is not installed; run as root"
	SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
	die "apt-get update failed"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}" ||
	die "apt-get install failed for: ${missing[*]}"
echo "install-deps: done"
