#!/usr/bin/env bash
# Installs everything the integration-test bed (tests/support) needs: etcd,
# kube-apiserver, a pinned moto in a venv, service-account keys and a static
# admin token. Idempotent: a second run only re-checks and rewrites testbed.env.
#
#   scripts/testbed-install.sh            # install / verify
#   KUBEBUILDER_ASSETS=/dir scripts/...   # use envtest binaries (etcd, kube-apiserver) from /dir
#
# Result: ${XDG_CACHE_HOME:-$HOME/.cache}/branchpipeline-controller/testbed.env
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/branchpipeline-controller"

K8S_VERSION=1.20.2
# Bump when the way kube-apiserver is built changes, so stale binaries are rebuilt.
K8S_BUILD_REV=r1
MOTO_VERSION=5.2.5

BASE_PACKAGES=(jq python3-venv openssl ca-certificates)
# Only needed to build kube-apiserver; envtest binaries make them unnecessary.
BUILD_PACKAGES=(golang-go golang-github-modern-go-reflect2-dev rsync make dpkg-dev)

SCRIPT_NAME=testbed-install
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$CACHE"
install_apt_packages "${BASE_PACKAGES[@]}"

# ---------------------------------------------------------------- etcd + kube-apiserver
if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/etcd" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]]; then
    log "using envtest binaries from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    ETCD_BIN="$(cd "$KUBEBUILDER_ASSETS" && pwd)/etcd"
    APISERVER_BIN="$(cd "$KUBEBUILDER_ASSETS" && pwd)/kube-apiserver"
else
    install_apt_packages etcd-server
    ETCD_BIN="$(command -v etcd || true)"
    [[ -n "$ETCD_BIN" ]] || ETCD_BIN=/usr/bin/etcd
    [[ -x "$ETCD_BIN" ]] || die "etcd not found after installing etcd-server"

    K8S_DIR="$CACHE/k8s-$K8S_VERSION-$K8S_BUILD_REV"
    APISERVER_BIN="$K8S_DIR/bin/kube-apiserver"
    if [[ -x "$APISERVER_BIN" ]]; then
        log "kube-apiserver $K8S_VERSION cached at $APISERVER_BIN"
    else
        install_apt_packages "${BUILD_PACKAGES[@]}"
        # Debian ships kube-apiserver only as source (package 'kubernetes', 1.20.2 in bookworm).
        SRC_LIST=/etc/apt/sources.list.d/branchpipeline-testbed-src.sources
        if ! grep -qs 'deb-src' "$SRC_LIST"; then
            log "adding deb-src entry $SRC_LIST"
            "${SUDO[@]}" tee "$SRC_LIST" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
            apt_update
        elif [[ $APT_UPDATED -eq 0 ]] && ! apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
            apt_update
        fi

        WORK="$CACHE/build-k8s"
        rm -rf "$WORK"
        mkdir -p "$WORK"
        log "fetching Debian source package kubernetes"
        (cd "$WORK" && apt-get source -qq kubernetes >"$WORK/apt-source.log" 2>&1) \
            || { tail -n 20 "$WORK/apt-source.log" >&2; die "cannot fetch Debian source package kubernetes: is deb-src reachable?"; }
        TREE="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)"
        [[ -n "$TREE" && -d "$TREE/vendor" ]] || die "unexpected layout of Debian source package kubernetes in $WORK"

        # The vendored reflect2 (v1.0.1) reads Go runtime internals that changed after
        # Go 1.18: kube-apiserver built with it segfaults on Go 1.19. Debian's 1.0.2 is fixed.
        REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
        [[ -d "$REFLECT2" ]] || die "missing $REFLECT2 (package golang-github-modern-go-reflect2-dev)"
        log "replacing vendored reflect2 with Debian's v1.0.2"
        rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
        rsync -a --exclude '*_test.go' --exclude 'test*/' "$REFLECT2/" "$TREE/vendor/github.com/modern-go/reflect2/"
        sed -i -E 's#(github.com/modern-go/reflect2) v[0-9][0-9.]*#\1 v1.0.2#g' "$TREE/vendor/modules.txt" "$TREE/go.mod"
        grep -q '^# github.com/modern-go/reflect2 v1.0.2' "$TREE/vendor/modules.txt" \
            || die "could not pin reflect2 v1.0.2 in vendor/modules.txt"

        # The build scripts expect the tree at $GOPATH/src/k8s.io/kubernetes.
        mkdir -p "$WORK/.go/src/k8s.io"
        ln -sfn "$TREE" "$WORK/.go/src/k8s.io/kubernetes"
        log "building kube-apiserver $K8S_VERSION (takes ~6 min; log: $WORK/build.log)"
        start=$SECONDS
        (
            cd "$WORK/.go/src/k8s.io/kubernetes"
            export GOPATH="$WORK/.go" GOCACHE="$WORK/.gocache" GOFLAGS=-mod=vendor GOTOOLCHAIN=local
            make WHAT=cmd/kube-apiserver
        ) >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; die "building kube-apiserver failed (full log: $WORK/build.log)"; }
        BUILT="$(find "$TREE/_output" -type f -name kube-apiserver -perm -u+x | head -n 1)"
        [[ -n "$BUILT" ]] || die "build finished but no kube-apiserver binary under $TREE/_output"
        mkdir -p "$K8S_DIR/bin"
        install -m 0755 "$BUILT" "$APISERVER_BIN.tmp"
        mv "$APISERVER_BIN.tmp" "$APISERVER_BIN"
        log "built kube-apiserver in $((SECONDS - start)) s"
        rm -rf "$WORK"
    fi
fi
"$APISERVER_BIN" --version >/dev/null 2>&1 || die "$APISERVER_BIN does not run"

# ---------------------------------------------------------------- moto
# Debian's python has a working venv module once python3-venv is installed; pyenv/other
# pythons on PATH are used only when /usr/bin/python3 is absent.
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3 || true)"
[[ -n "$PYTHON" ]] || die "no python3 found"
MOTO_VENV="$CACHE/moto-$MOTO_VERSION"
if [[ -x "$MOTO_VENV/bin/python" ]] && "$MOTO_VENV/bin/python" -c "import moto, flask, boto3, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    log "moto $MOTO_VERSION cached at $MOTO_VENV"
else
    log "creating venv with moto[server]==$MOTO_VERSION"
    rm -rf "$MOTO_VENV"
    "$PYTHON" -m venv "$MOTO_VENV" || die "python venv creation failed with $PYTHON (is python3-venv installed?)"
    "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
        || { rm -rf "$MOTO_VENV"; die "pip install moto[server]==$MOTO_VERSION failed: is PyPI reachable?"; }
fi
PYTHONDONTWRITEBYTECODE=1 "$MOTO_VENV/bin/python" -c "import sys; sys.path.insert(0, '$REPO/tests'); import moto_ext.patches" \
    || die "tests/moto_ext does not import against moto $MOTO_VERSION"

# ---------------------------------------------------------------- credentials for the bed
# Only for a throw-away local apiserver: never used against a real cluster.
KEYS="$CACHE/keys"
mkdir -p "$KEYS"
chmod 700 "$KEYS"
if [[ ! -s "$KEYS/sa.key" || ! -s "$KEYS/sa.pub" ]]; then
    log "generating service-account signing key"
    openssl genrsa -out "$KEYS/sa.key" 2048 2>/dev/null
    openssl rsa -in "$KEYS/sa.key" -pubout -out "$KEYS/sa.pub" 2>/dev/null
fi
if [[ ! -s "$KEYS/admin.token" ]]; then
    log "generating admin token"
    (umask 077; openssl rand -hex 24 >"$KEYS/admin.token")
fi
if [[ ! -s "$KEYS/tokens.csv" ]]; then
    (umask 077; printf '%s,testbed-admin,testbed-admin-uid,"system:masters"\n' "$(cat "$KEYS/admin.token")" >"$KEYS/tokens.csv")
fi

# ---------------------------------------------------------------- testbed.env
ENV_FILE="$CACHE/testbed.env"
cat >"$ENV_FILE.tmp" <<ENV
# Written by scripts/testbed-install.sh; read by tests/support. Environment
# variables of the same name override these values.
BPL_KUBE_APISERVER=$APISERVER_BIN
BPL_ETCD=$ETCD_BIN
BPL_MOTO_PYTHON=$MOTO_VENV/bin/python
BPL_MOTO_VERSION=$MOTO_VERSION
BPL_MOTO_EXT=$REPO/tests/moto_ext
BPL_SA_KEY=$KEYS/sa.key
BPL_SA_PUB=$KEYS/sa.pub
BPL_TOKEN_FILE=$KEYS/tokens.csv
BPL_ADMIN_TOKEN_FILE=$KEYS/admin.token
ENV
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "test bed ready: $ENV_FILE"

# ---------------------------------------------------------------- Helm library and Lua
# The chart tests drive Helm through its Go library (PyPI helm-sdkpy) and run the Argo CD
# health check under real Lua interpreters.
bash "$REPO/scripts/install-helm-sdk.sh"
