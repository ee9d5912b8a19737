#!/usr/bin/env bash
# Installs what the chart tests (tests/chart/) need: the real Helm v4 library through
# helm-sdkpy (a pinned PyPI wheel that bundles Helm's Go code as a shared library) in a
# venv, and real Lua interpreters for the Argo CD health check: Debian's lua5.4, and
# lua5.1, the dialect of gopher-lua, which Argo CD runs health scripts in.
# No helm binary is involved. Idempotent and fast when cached.
#
#   scripts/install-helm-sdk.sh
#
# Result: ${XDG_CACHE_HOME:-$HOME/.cache}/branchpipeline-controller/helm.env with
#   BPL_HELM_PYTHON=<venv python with helm_sdkpy>
#   BPL_LUA=/usr/bin/lua5.4
#   BPL_LUA51=/usr/bin/lua5.1
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/branchpipeline-controller"

# helm-sdkpy 0.1.32 bundles Helm v4.3.0. It declares Requires-Python >=3.12 but runs on
# 3.11 (Debian bookworm's python3), hence --ignore-requires-python.
HELM_SDKPY_VERSION=0.1.32
HELM_VENV="$CACHE/helm-sdk-$HELM_SDKPY_VERSION"
LUA_BIN=/usr/bin/lua5.4
LUA51_BIN=/usr/bin/lua5.1

SCRIPT_NAME=install-helm-sdk
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$CACHE"

# ---------------------------------------------------------------- Debian packages
install_apt_packages lua5.4 lua5.1 python3-venv
[[ -x "$LUA_BIN" ]] || die "$LUA_BIN missing after installing lua5.4"
"$LUA_BIN" -e 'assert(_VERSION == "Lua 5.4")' || die "$LUA_BIN is not Lua 5.4"
[[ -x "$LUA51_BIN" ]] || die "$LUA51_BIN missing after installing lua5.1"
"$LUA51_BIN" -e 'assert(_VERSION == "Lua 5.1")' || die "$LUA51_BIN is not Lua 5.1"
log "lua: $("$LUA_BIN" -v 2>&1); $("$LUA51_BIN" -v 2>&1)"

# ---------------------------------------------------------------- helm-sdkpy venv
# Debian's python has a working venv module; another python3 on PATH is only a fallback.
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3 || true)"
[[ -n "$PYTHON" ]] || die "no python3 found"

check_helm() {
    [[ -x "$HELM_VENV/bin/python" ]] && "$HELM_VENV/bin/python" - "$HELM_SDKPY_VERSION" <<'PY' 2>/dev/null
import sys
import helm_sdkpy
sys.exit(0 if helm_sdkpy.__version__ == sys.argv[1] and helm_sdkpy.get_version() else 1)
PY
}

if check_helm; then
    log "helm-sdkpy $HELM_SDKPY_VERSION cached at $HELM_VENV"
else
    log "creating venv with helm-sdkpy==$HELM_SDKPY_VERSION (a ~47 MB wheel) at $HELM_VENV"
    rm -rf "$HELM_VENV"
    "$PYTHON" -m venv "$HELM_VENV" || die "python venv creation failed with $PYTHON (is python3-venv installed?)"
    "$HELM_VENV/bin/pip" install -q --disable-pip-version-check --ignore-requires-python \
        "helm-sdkpy==$HELM_SDKPY_VERSION" \
        || { rm -rf "$HELM_VENV"; die "pip install helm-sdkpy==$HELM_SDKPY_VERSION failed: is PyPI reachable?"; }
    check_helm || { rm -rf "$HELM_VENV"; die "helm-sdkpy $HELM_SDKPY_VERSION does not load in $HELM_VENV"; }
fi
log "helm library: $("$HELM_VENV/bin/python" -c 'import helm_sdkpy; print(helm_sdkpy.get_version())')"

# ---------------------------------------------------------------- helm.env
ENV_FILE="$CACHE/helm.env"
cat >"$ENV_FILE.tmp" <<ENV
# Written by scripts/install-helm-sdk.sh; read by tests/chart/. Environment
# variables of the same name override these values.
BPL_HELM_PYTHON=$HELM_VENV/bin/python
BPL_HELM_SDKPY_VERSION=$HELM_SDKPY_VERSION
BPL_LUA=$LUA_BIN
BPL_LUA51=$LUA51_BIN
ENV
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "helm + lua ready: $ENV_FILE"
