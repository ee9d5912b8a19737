"""Drives the real Helm v4 library (through helm-sdkpy) for the chart tests (tests/chart/).

    <venv python> helm_driver.py ACTION < request.json

ACTION is one of version, lint, show, install, upgrade, uninstall, status. The request is
a JSON object:

    chart       path of the chart directory (lint, show, install, upgrade)
    release     release name (install, upgrade, uninstall, status)
    namespace   release namespace (default "default")
    kubeconfig  path of a kubeconfig file (every action but version, lint and show)
    values      values, as a JSON object (install, upgrade)
    options     keyword arguments for the helm-sdkpy action (install, upgrade, uninstall)

Prints one JSON object on stdout: {"ok": true, "result": ...} when Helm succeeded, or
{"ok": false, "error_type": "...", "error": "..."} when Helm reported an error; exit code 0
either way. Exit code 2 means a bad request, anything else a crash of this script.

helm-sdkpy 0.1.32 (Helm v4.3.0) has no `helm template` / dry-run: rendering needs an
install into a cluster, whose result carries the rendered manifest. Its lint result
carries each message's path and severity but not its text (Go errors marshal as {}).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import helm_sdkpy

# Helm's support.Severity values.
SEVERITIES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

# Options the tests may pass through; anything else is a mistake in the test.
INSTALL_OPTIONS = {
    "create_namespace",
    "wait",
    "timeout",
    "skip_schema_validation",
    "server_side_apply",
    "force_conflicts",
    "disable_openapi_validation",
    "take_ownership",
}
UPGRADE_OPTIONS = INSTALL_OPTIONS | {"install", "reset_values", "reuse_values", "max_history"}
UNINSTALL_OPTIONS = {"wait", "timeout"}


class BadRequest(Exception):
    pass


def options(request: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    given = request.get("options") or {}
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise BadRequest(f"unsupported options {unknown}; allowed: {sorted(allowed)}")
    return given


def require(request: dict[str, Any], key: str) -> Any:
    value = request.get(key)
    if value in (None, ""):
        raise BadRequest(f"request needs {key!r}")
    return value


def config(request: dict[str, Any], needs_cluster: bool) -> helm_sdkpy.Configuration:
    kubeconfig = request.get("kubeconfig")
    if needs_cluster and not kubeconfig:
        raise BadRequest("request needs 'kubeconfig'")
    return helm_sdkpy.Configuration(
        namespace=request.get("namespace") or "default",
        kubeconfig=kubeconfig,
    )


def release_summary(release: dict[str, Any]) -> dict[str, Any]:
    """The release without the chart's base64 file contents."""
    chart = release.get("chart") or {}
    return {
        "name": release.get("name"),
        "namespace": release.get("namespace"),
        "version": release.get("version"),
        "info": release.get("info"),
        "manifest": release.get("manifest", ""),
        "apply_method": release.get("apply_method"),
        "chart_metadata": chart.get("metadata"),
    }


async def run(action: str, request: dict[str, Any]) -> Any:
    if action == "version":
        return {"helm_sdkpy": helm_sdkpy.__version__, "library": helm_sdkpy.get_version()}
    if action == "lint":
        result = await helm_sdkpy.Lint(config(request, False)).run(require(request, "chart"))
        messages = [
            {"severity": SEVERITIES.get(m.get("Severity"), str(m.get("Severity"))), "path": m.get("Path")}
            for m in result.get("Messages") or []
        ]
        return {
            "charts": result.get("TotalChartsLinted"),
            "messages": messages,
            "errors": len(result.get("Errors") or []),
        }
    if action == "show":
        show = helm_sdkpy.Show(config(request, False))
        chart = require(request, "chart")
        return {"chart": await show.chart(chart), "values": await show.values(chart)}
    if action == "install":
        release = await helm_sdkpy.Install(config(request, True)).run(
            release_name=require(request, "release"),
            chart_path=require(request, "chart"),
            values=request.get("values") or None,
            # The test apiserver runs no kubelet: Deployments never become Ready.
            **{"wait": False, "disable_openapi_validation": False, **options(request, INSTALL_OPTIONS)},
        )
        return release_summary(release)
    if action == "upgrade":
        release = await helm_sdkpy.Upgrade(config(request, True)).run(
            release_name=require(request, "release"),
            chart_path=require(request, "chart"),
            values=request.get("values") or None,
            **{"wait": False, "disable_openapi_validation": False, **options(request, UPGRADE_OPTIONS)},
        )
        return release_summary(release)
    if action == "uninstall":
        return await helm_sdkpy.Uninstall(config(request, True)).run(
            require(request, "release"), **{"wait": False, **options(request, UNINSTALL_OPTIONS)}
        )
    if action == "status":
        return release_summary(await helm_sdkpy.Status(config(request, True)).run(require(request, "release")))
    raise BadRequest(f"unknown action {action!r}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read()
        request = json.loads(text) if text.strip() else {}
        if not isinstance(request, dict):
            raise BadRequest("the request must be a JSON object")
        result = asyncio.run(run(sys.argv[1], request))
        output: dict[str, Any] = {"ok": True, "result": result}
    except BadRequest as e:
        print(f"helm_driver: bad request: {e}", file=sys.stderr)
        return 2
    except helm_sdkpy.HelmError as e:
        output = {"ok": False, "error_type": type(e).__name__, "error": str(e)}
    json.dump(output, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
