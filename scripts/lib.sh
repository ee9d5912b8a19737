# Shared by the installers: logging and idempotent Debian package installs.
# Sourced with SCRIPT_NAME set for error messages.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "${SCRIPT_NAME:-install}" "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and sudo is missing: cannot install Debian packages"
    SUDO=(sudo)
fi

APT_UPDATED=0
apt_update() {
    log "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed: are the Debian mirrors reachable?"
    APT_UPDATED=1
}

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# Installs the packages that are missing; updates the package lists once, only if needed.
install_apt_packages() {
    local missing=() p
    for p in "$@"; do is_installed "$p" || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $APT_UPDATED -eq 1 ]] || apt_update
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}
