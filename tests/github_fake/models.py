"""JSON bodies shaped like GitHub's, each checked against the octocrab 0.54.9 model that
deserializes it (see README.md, "octocrab models checked").

Every URL-typed member is an absolute URL: octocrab parses them as ``url::Url``. API URLs
point at the fake (``base`` is the request's own ``http://host:port``); ``html_url``s point
at github.com and are never fetched.
"""

from __future__ import annotations

import base64
import time
import zlib
from typing import Any
from urllib.parse import quote

HTML = "https://github.com"


def iso(ts: float) -> str:
    """GitHub's timestamp format: RFC 3339 in UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def stable_id(kind: str, name: str) -> int:
    """A deterministic positive id for an account or repository name (case-insensitive)."""
    offset = {"account": 1_000_000, "repo": 500_000_000}[kind]
    return offset + zlib.crc32(name.lower().encode()) % 400_000_000


def node_id(prefix: str, ident: int) -> str:
    return base64.b64encode(f"{prefix}{ident}".encode()).decode().rstrip("=")


def author(base: str, login: str, ident: int, kind: str) -> dict[str, Any]:
    """octocrab ``models::Author``: every member but ``name``, ``patch_url``, ``email``
    is required."""
    api = f"{base}/users/{quote(login, safe='')}"
    return {
        "login": login,
        "id": ident,
        "node_id": node_id("04:User" if kind != "Organization" else "012:Organization", ident),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{ident}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{HTML}/{quote(login, safe='')}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def account(base: str, owner: str) -> dict[str, Any]:
    return author(base, owner, stable_id("account", owner), "Organization")


def repository(base: str, full_name: str, repo_id: int) -> dict[str, Any]:
    """octocrab ``models::Repository`` (required: ``id``, ``name``, ``url``); GitHub's
    "minimal repository" members that matter, all private."""
    owner, name = full_name.split("/", 1)
    api = f"{base}/repos/{full_name}"
    return {
        "id": repo_id,
        "node_id": node_id("010:Repository", repo_id),
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": account(base, owner),
        "html_url": f"{HTML}/{full_name}",
        "description": None,
        "fork": False,
        "url": api,
        "statuses_url": f"{api}/statuses/{{sha}}",
        "visibility": "private",
        "default_branch": "main",
        "archived": False,
        "disabled": False,
    }


def error(message: str, status: int, documentation_url: str, **extra: Any) -> dict[str, Any]:
    """GitHub's error body: ``message``, ``documentation_url``, ``status`` (a string)."""
    body: dict[str, Any] = {"message": message, "documentation_url": documentation_url}
    body.update(extra)
    body["status"] = str(status)
    return body


def status_object(
    base: str, record: dict[str, Any], creator: dict[str, Any] | None
) -> dict[str, Any]:
    """octocrab ``models::Status`` (only ``state`` required); GitHub's "status" object.
    ``creator`` is left out of the combined status' "simple commit status" entries."""
    body = {
        "url": f"{base}/repos/{record['repo']}/statuses/{record['sha']}",
        "avatar_url": record["avatarUrl"],
        "id": record["id"],
        "node_id": node_id("06:Status", record["id"]),
        "state": record["state"],
        "description": record["description"],
        "target_url": record["target_url"],
        "context": record["context"],
        "created_at": iso(record["time"]),
        "updated_at": iso(record["time"]),
    }
    if creator is not None:
        body["creator"] = creator
    return body
