# Shared by scripts/test and scripts/demo: find Python 3.13, keep .venv in step with the
# requirements, install Debian packages that are missing. Sourced, not executed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"

find_python313() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 \
        /usr/local/bin/python3.13 /usr/bin/python3.13; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c 'import sys; raise SystemExit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.13 not found (set PYTHON=/path/to/python3.13)" >&2
    return 1
}

# Recreate or update .venv only when the requirements changed since it was built.
ensure_venv() {
    local stamp want py
    want=$(cat "$ROOT/requirements_test.txt" "$ROOT/helper/pyproject.toml" | sha256sum | cut -d' ' -f1)
    stamp="$VENV/.requirements.sha256"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        py=$(find_python313)
        echo "==> creating .venv with $py"
        "$py" -m venv "$VENV"
    fi
    echo "==> installing test requirements into .venv (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements_test.txt"
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT/helper"
    echo "$want" >"$stamp"
}

# Install the Debian packages that are missing (needs root; skipped with a note otherwise).
ensure_debs() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "note: not root, cannot install Debian packages: ${missing[*]}" >&2
        return 0
    fi
    echo "==> installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A separate venv for a tool whose dependencies must not meet Home Assistant's pins
# (schemathesis wants a newer pytest than pytest-homeassistant-custom-component allows).
ensure_tool_venv() {
    local dir="$1" spec="$2" py
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.spec" 2>/dev/null)" = "$spec" ]; then
        return 0
    fi
    py=$(find_python313)
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet "$spec"
    echo "$spec" >"$dir/.spec"
}

# Debian 12, Debian 13 and Ubuntu 24.04 root filesystems from each one's own packages, for the
# install test (tests/system/test_install.py). Each is built once with debootstrap and kept under
# /var/cache/plex-security-tests/<name> (a stamp names what it was built from); tests overlay it.
ROOTFS_CACHE="${ROOTFS_CACHE:-/var/cache/plex-security-tests}"
ROOTFS_PACKAGES="python3,python3-venv,python3-pip,systemd,nftables,util-linux,passwd,ca-certificates,openssl"
DEBIAN_MIRROR=http://deb.debian.org/debian
UBUNTU_MIRROR=http://archive.ubuntu.com/ubuntu
# Debian's debootstrap does not carry Ubuntu's archive key: Ubuntu's own keyring package, pinned
# by its SHA-256, verifies the archive's Release file as Debian's keyring does for Debian.
UBUNTU_KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb
UBUNTU_KEYRING_SHA256=36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8
ensure_rootfs() {
    ensure_one_rootfs debian12 bookworm "$DEBIAN_MIRROR" || return 1
    ensure_one_rootfs debian13 trixie "$DEBIAN_MIRROR" || return 1
    ensure_one_rootfs ubuntu2404 noble "$UBUNTU_MIRROR" ubuntu || return 1
}
ubuntu_keyring() {
    local dir="$ROOTFS_CACHE/ubuntu-keyring"
    if [ ! -f "$dir/usr/share/keyrings/ubuntu-archive-keyring.gpg" ]; then
        rm -rf "$dir" "$dir.deb"
        curl -fsS -o "$dir.deb" "$UBUNTU_MIRROR/$UBUNTU_KEYRING_DEB" || return 1
        echo "$UBUNTU_KEYRING_SHA256  $dir.deb" | sha256sum -c --quiet - || return 1
        dpkg-deb -x "$dir.deb" "$dir" && rm -f "$dir.deb"
    fi
    echo "$dir/usr/share/keyrings/ubuntu-archive-keyring.gpg"
}
ensure_one_rootfs() {
    local name="$1" suite="$2" mirror="$3" distro="${4:-debian}" tmp keyring
    local dir="$ROOTFS_CACHE/$name" spec="debootstrap $2 minbase $ROOTFS_PACKAGES"
    local args=(--variant=minbase --include="$ROOTFS_PACKAGES")
    if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$spec" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v debootstrap >/dev/null; then
        echo "note: cannot build the $name root filesystem (needs root and debootstrap)" >&2
        return 0
    fi
    echo "==> building a $name ($suite) root filesystem with debootstrap (once; cached in $dir)"
    mkdir -p "$ROOTFS_CACHE"
    tmp="$ROOTFS_CACHE/$name.new"
    rm -rf "$tmp"
    local script=()
    if [ "$distro" = ubuntu ]; then
        keyring=$(ubuntu_keyring) || {
            echo "error: could not fetch and check Ubuntu's keyring package" >&2
            return 1
        }
        # python3-pip is in universe; gutsy is the script every Ubuntu release since uses.
        args+=("--components=main,universe" "--keyring=$keyring")
        script=(/usr/share/debootstrap/scripts/gutsy)
    fi
    debootstrap "${args[@]}" "$suite" "$tmp" "$mirror" "${script[@]}" \
        >"$ROOTFS_CACHE/debootstrap-$name.log" 2>&1 || {
        echo "error: debootstrap of $suite failed; see $ROOTFS_CACHE/debootstrap-$name.log" >&2
        return 1
    }
    rm -rf "$tmp/var/cache/apt/archives/"*.deb
    echo "$spec" >"$tmp/.stamp"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

# The Home Assistant tests also run on the newest release that runs on Python 3.13 (.venv holds
# the floor that hacs.json names). Its own venv: the two pin different aiohttp, pytest, syrupy.
HA_NEXT_VENV="$ROOT/.venv-ha2026"
# The tests' own writer of small .mmdb files comes along, at the pin requirements_test.txt sets.
HA_NEXT_SPEC="homeassistant==2026.2.3 pytest-homeassistant-custom-component==0.13.316 hypothesis==6.170.17 \
$(grep -E '^mmdb-writer==' "$ROOT/requirements_test.txt")"
ensure_ha_next_venv() {
    local py want
    # The helper's own dependencies come along (the HA tests start a real helper).
    want="$HA_NEXT_SPEC $(sha256sum "$ROOT/helper/pyproject.toml" | cut -d' ' -f1)"
    if [ -x "$HA_NEXT_VENV/bin/python" ] && [ "$(cat "$HA_NEXT_VENV/.spec" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    py=$(find_python313)
    echo "==> creating $HA_NEXT_VENV ($HA_NEXT_SPEC)"
    rm -rf "$HA_NEXT_VENV"
    "$py" -m venv "$HA_NEXT_VENV"
    "$HA_NEXT_VENV/bin/python" -m pip install --quiet --upgrade pip
    # Newer Home Assistant releases ask for a newer 3.13 patch release than some hosts have;
    # their tests run on 3.13.0 all the same.
    # shellcheck disable=SC2086 # the spec is a list of requirements
    "$HA_NEXT_VENV/bin/python" -m pip install --quiet --ignore-requires-python $HA_NEXT_SPEC
    "$HA_NEXT_VENV/bin/python" -m pip install --quiet --ignore-requires-python -e "$ROOT/helper"
    echo "$want" >"$HA_NEXT_VENV/.spec"
}

# CrowdSec for the fleet tests (tests/system/test_crowdsec.py), which run their own LAPI under
# their temp dir. The package's postinst registers with the Central API unless that
# credentials file already has content (README.Debian); there is no network for it here, so
# the file is written first. Whatever services the package started are stopped and disabled:
# the system's LAPI and firewall bouncer have no business on a test machine.
ensure_crowdsec() {
    if ! dpkg-query -W -f='${Status}' crowdsec 2>/dev/null | grep -q "install ok installed" && [ "$(id -u)" -eq 0 ]; then
        mkdir -p /etc/crowdsec
        if [ ! -s /etc/crowdsec/online_api_credentials.yaml ]; then
            echo "# no Central API: plex_security's tests run CrowdSec as a Local API only" \
                >/etc/crowdsec/online_api_credentials.yaml
        fi
    fi
    ensure_debs crowdsec crowdsec-firewall-bouncer
    if [ -d /run/systemd/system ] && [ "$(id -u)" -eq 0 ]; then
        systemctl disable --now crowdsec crowdsec-firewall-bouncer >/dev/null 2>&1 || true
    fi
}
