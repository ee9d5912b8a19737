"""A GitHub REST API stand-in for the integration tests: App auth, installations,
installation tokens, commit statuses, rate limits, plus ``/_fake/*`` test controls.

See README.md for what is modelled (with the GitHub docs each rule follows) and what is not.
Token and JWT values are never written to stdout/stderr nor to the request log.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from . import jwt_rs256, models

DOCS = "https://docs.github.com/rest"
DOC_STATUS_CREATE = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
DOC_STATUS_LIST = (
    "https://docs.github.com/rest/commits/statuses#list-commit-statuses-for-a-reference"
)
DOC_STATUS_COMBINED = (
    "https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference"
)
DOC_REPO_INSTALLATION = (
    "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"
)
DOC_ACCESS_TOKEN = (
    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
)
DOC_PRIMARY = (
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
    "#about-primary-rate-limits"
)
DOC_SECONDARY = (
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)

STATES = ("error", "failure", "pending", "success")
DESCRIPTION_MAX = 140
DEFAULT_PERMISSIONS = {"metadata": "read", "statuses": "write"}
LEVELS = {"read": 1, "write": 2, "admin": 3}
UNAUTHENTICATED_LIMIT = 60
RATE_WINDOW = 3600
SHA_RE = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
REPO_NAME_RE = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
TOKEN_ALPHABET = string.ascii_letters + string.digits

AUTH_KINDS = ("app-jwt", "installation-token", "static-token", "expired-token", "invalid", "none")


def parse_repos(value: Any) -> list[str]:
    """``owner/name`` strings, all of one owner (an installation belongs to one account)."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise ValueError("repositories must be a non-empty list of owner/name")
    repos = []
    for item in value:
        if not isinstance(item, str) or not REPO_NAME_RE.match(item.strip()):
            raise ValueError(f"not an owner/name repository: {item!r}")
        repos.append(item.strip())
    owners = {r.split("/", 1)[0].lower() for r in repos}
    if len(owners) != 1:
        raise ValueError("an installation's repositories must share one owner (account)")
    return repos


def parse_installation_arg(text: str) -> tuple[int, list[str]]:
    """``ID=owner/repo[,owner/repo...]`` (the ``--installation`` flag)."""
    ident, sep, repos = text.partition("=")
    if not sep or not ident.strip().isdigit():
        raise ValueError(f"--installation wants ID=owner/repo[,owner/repo...], got {text!r}")
    return int(ident), parse_repos(repos)


def parse_static_token_arg(text: str) -> tuple[str, list[str] | None]:
    """``TOKEN`` (every repository) or ``TOKEN=owner/repo[,owner/repo...]``."""
    token, sep, repos = text.partition("=")
    if not token:
        raise ValueError("--static-token wants TOKEN or TOKEN=owner/repo[,...]")
    if not sep:
        return token, None
    items = [r.strip() for r in repos.split(",") if r.strip()]
    for item in items:
        if not REPO_NAME_RE.match(item):
            raise ValueError(f"not an owner/name repository: {item!r}")
    return token, items


@dataclass
class Config:
    app_id: int | None = None
    public_key: Any = None
    client_id: str | None = None
    app_slug: str = "branchpipeline-fake"
    installations: list[tuple[int, list[str]]] = field(default_factory=list)
    static_tokens: list[tuple[str, list[str] | None]] = field(default_factory=list)
    token_ttl: float = 3600.0
    rate_limit: int = 5000
    status_limit: int = 1000
    # Link headers as paths ("/repositories/1/...") instead of absolute URLs.
    relative_links: bool = False


@dataclass
class Installation:
    id: int
    repos: list[str]
    permissions: dict[str, str]
    from_cli: bool
    created: float

    @property
    def owner(self) -> str:
        return self.repos[0].split("/", 1)[0]


@dataclass
class IssuedToken:
    value: str
    installation_id: int
    issued: float
    expires: float
    permissions: dict[str, str]
    # None: every repository of the installation; else the names it was scoped to.
    repos: list[str] | None
    revoked: bool = False


@dataclass
class Auth:
    kind: str
    installation_id: int | None = None
    token: IssuedToken | None = None
    static_repos: list[str] | None = None
    static_index: int | None = None
    jwt_message: str = jwt_rs256.UNDECODABLE


class Refusal(Exception):
    """An API answer other than the handler's success (4xx)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _refuse(status: int, message: str, doc: str = DOCS, **extra: Any) -> Refusal:
    return Refusal(status, models.error(message, status, doc, **extra))


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    payload = b"" if body is None else json.dumps(body).encode()
    response = Response(payload, status=status)
    if body is not None:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    else:
        response.headers.pop("Content-Type", None)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _int_param(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _paging(req: Request, default: int = 30) -> tuple[int, int]:
    per_page = min(max(_int_param(req.args.get("per_page"), default), 1), 100)
    page = max(_int_param(req.args.get("page"), 1), 1)
    return per_page, page


def _link_header(
    url: str, query: dict[str, str], per_page: int, page: int, total: int
) -> str | None:
    """GitHub's ``Link`` header: prev, next, last, first (only the relations that apply);
    absent when everything fits in one page."""
    last = max(1, math.ceil(total / per_page))
    if last == 1 and page == 1:
        return None

    def link(number: int, rel: str) -> str:
        params = dict(query)
        params["per_page"] = str(per_page)
        params["page"] = str(number)
        return f'<{url}?{urlencode(params)}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(page - 1, "prev"))
    if page < last:
        links.append(link(page + 1, "next"))
        links.append(link(last, "last"))
    if page > 1:
        links.append(link(1, "first"))
    return ", ".join(links)


class RateBucket:
    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.reset = 0.0

    def roll(self, now: float) -> None:
        if now >= self.reset:
            self.used = 0
            self.reset = now + RATE_WINDOW

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(self.limit - self.used, 0)),
            "x-ratelimit-reset": str(int(self.reset)),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": "core",
        }


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    # "app": App JWT only; "repo": a repository's endpoint; "installation": an
    # installation token only; "meta": any credentials.
    kind: str


REPO = r"^/(?:repos/(?P<owner>[^/]+)/(?P<name>[^/]+)|repositories/(?P<rid>\d+))"
ROUTES = [
    Route("GET", re.compile(r"^/app$"), "get_app", "app"),
    Route("GET", re.compile(r"^/app/installations$"), "list_installations", "app"),
    Route("GET", re.compile(r"^/app/installations/(?P<iid>\d+)$"), "get_installation", "app"),
    Route(
        "POST",
        re.compile(r"^/app/installations/(?P<iid>\d+)/access_tokens$"),
        "create_token",
        "app",
    ),
    Route("GET", re.compile(REPO + r"/installation$"), "repo_installation", "repo"),
    Route("POST", re.compile(REPO + r"/statuses/(?P<ref>[^/]+)$"), "create_status", "repo"),
    Route("GET", re.compile(REPO + r"/commits/(?P<ref>.+)/statuses$"), "list_statuses", "repo"),
    Route("GET", re.compile(REPO + r"/statuses/(?P<ref>.+)$"), "list_statuses", "repo"),
    Route("GET", re.compile(REPO + r"/commits/(?P<ref>.+)/status$"), "combined_status", "repo"),
    Route("GET", re.compile(r"^/installation/repositories$"), "installation_repos", "installation"),
    Route("DELETE", re.compile(r"^/installation/token$"), "revoke_token", "installation"),
    Route("GET", re.compile(r"^/rate_limit$"), "rate_limit", "meta"),
]


class GitHubFake:
    """The WSGI application. Thread-safe: all state sits behind one lock."""

    def __init__(self, config: Config):
        self.config = config
        self.lock = threading.RLock()
        self.started = time.time()
        self.status_seq = 0
        self.installations: dict[int, Installation] = {}
        self.repo_ids: dict[str, tuple[int, str]] = {}
        for ident, repos in config.installations:
            self._add_installation(ident, repos, None, from_cli=True)
        self._clear()

    # ------------------------------------------------------------------ state
    def _clear(self) -> None:
        self.tokens: dict[str, IssuedToken] = {}
        self.token_order: list[IssuedToken] = []
        self.statuses: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.injections: list[dict[str, Any]] = []
        self.buckets: dict[tuple[str, Any], RateBucket] = {}
        # (repo lower-case, "branch" | "tag", name) -> sha, set by POST /_fake/refs.
        self.refs: dict[tuple[str, str, str], str] = {}
        self.repo_ids: dict[str, tuple[int, str]] = {}
        for inst in self.installations.values():
            for repo in inst.repos:
                self._register_repo(repo)

    def reset(self) -> None:
        """Back to the command line's state: its installations (as given, even if replaced or
        deleted since), no tokens, statuses, refs, injected limits, counters or log."""
        with self.lock:
            self.installations = {}
            for ident, repos in self.config.installations:
                self._add_installation(ident, repos, None, from_cli=True)
            self._clear()

    def _register_repo(self, full_name: str) -> tuple[int, str]:
        key = full_name.lower()
        if key not in self.repo_ids:
            self.repo_ids[key] = (models.stable_id("repo", full_name), full_name)
        return self.repo_ids[key]

    def _add_installation(
        self, ident: int, repos: list[str], permissions: dict[str, str] | None, from_cli: bool
    ) -> Installation:
        for other in self.installations.values():
            if other.id == ident:
                continue
            clash = {r.lower() for r in other.repos} & {r.lower() for r in repos}
            if clash:
                raise ValueError(f"{sorted(clash)[0]} already belongs to installation {other.id}")
        perms = dict(DEFAULT_PERMISSIONS if permissions is None else permissions)
        for key, level in perms.items():
            if level not in LEVELS:
                raise ValueError(f"permission {key}: {level!r} is not read, write or admin")
        inst = Installation(ident, list(repos), perms, from_cli, time.time())
        self.installations[ident] = inst
        for repo in repos:
            self._register_repo(repo)
        return inst

    def _installation_of(self, full_name: str) -> Installation | None:
        key = full_name.lower()
        for inst in self.installations.values():
            if key in (r.lower() for r in inst.repos):
                return inst
        return None

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        req = Request(environ)
        if req.path.startswith("/_fake/") or req.path == "/_fake":
            try:
                response = self._control(req)
            except (ValueError, KeyError, TypeError) as err:
                response = _json_response(400, {"error": f"{type(err).__name__}: {err}"})
            return response(environ, start_response)
        entry: dict[str, Any] = {
            "method": req.method,
            "path": req.path,
            "auth": "none",
            "installationId": None,
            "repo": None,
            "status": None,
            "rateLimited": None,
            "retryAfter": None,
            "time": time.time(),
        }
        try:
            response = self._api(req, entry)
        except Exception as err:  # noqa: BLE001 - a fake's bug, answered as a 500
            response = _json_response(
                500, models.error(f"github_fake: {type(err).__name__}: {err}", 500, DOCS)
            )
        entry["status"] = response.status_code
        with self.lock:
            self.requests.append(entry)
        return response(environ, start_response)

    # ------------------------------------------------------------------ auth
    def _authenticate(self, req: Request, now: float) -> Auth:
        header = req.headers.get("Authorization")
        if not header:
            return Auth("none")
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        scheme = scheme.lower()
        if scheme not in ("bearer", "token") or not credential:
            return Auth("invalid")
        if jwt_rs256.looks_like_jwt(credential):
            if scheme != "bearer":
                return Auth("invalid")
            check = jwt_rs256.verify(
                credential, self.config.public_key, self.config.app_id, self.config.client_id, now
            )
            if check.ok:
                return Auth("app-jwt")
            return Auth("invalid", jwt_message=check.message)
        with self.lock:
            token = self.tokens.get(credential)
            if token is not None:
                if token.revoked or token.installation_id not in self.installations:
                    return Auth("invalid")
                kind = "installation-token" if now < token.expires else "expired-token"
                return Auth(kind, token.installation_id, token)
        for index, (value, repos) in enumerate(self.config.static_tokens):
            if secrets.compare_digest(value.encode(), credential.encode()):
                return Auth("static-token", static_repos=repos, static_index=index)
        return Auth("invalid")

    def _bucket(self, auth: Auth, req: Request, now: float) -> RateBucket:
        if auth.kind == "installation-token":
            key: tuple[str, Any] = ("installation", auth.installation_id)
        elif auth.kind == "static-token":
            key = ("static", auth.static_index)
        elif auth.kind == "app-jwt":
            key = ("app", self.config.app_id)
        else:
            key = ("ip", req.remote_addr)
        limit = self.config.rate_limit if key[0] != "ip" else UNAUTHENTICATED_LIMIT
        with self.lock:
            bucket = self.buckets.setdefault(key, RateBucket(limit))
            bucket.roll(now)
        return bucket

    # ------------------------------------------------------------------ API
    def _api(self, req: Request, entry: dict[str, Any]) -> Response:
        now = time.time()
        auth = self._authenticate(req, now)
        entry["auth"] = auth.kind
        entry["installationId"] = auth.installation_id
        bucket = self._bucket(auth, req, now)
        extra_headers: dict[str, str] = {}
        try:
            route, params = self._match(req)
            repo = self._resolve_repo(params)
            entry["repo"] = repo
            self._require_auth(route, auth)
            if route.handler != "rate_limit":
                self._rate_limit(route, auth, bucket, repo, entry, now)
            if route.kind == "repo" and route.handler != "repo_installation":
                self._require_repo_access(auth, repo, write=route.method == "POST")
            handler = getattr(self, "_h_" + route.handler)
            status, body, extra_headers = handler(req, params, repo, auth, entry, now)
        except Refusal as refusal:
            status, body = refusal.status, refusal.body
            extra_headers = refusal.headers
        headers = {
            **bucket.headers(),
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": "2022-11-28",
            "x-github-request-id": secrets.token_hex(8).upper(),
        }
        headers.update(extra_headers)
        return _json_response(status, body, headers)

    def _match(self, req: Request) -> tuple[Route, dict[str, str]]:
        for route in ROUTES:
            found = route.pattern.match(req.path)
            if found and route.method == req.method:
                return route, {k: v for k, v in found.groupdict().items() if v is not None}
        raise _refuse(404, "Not Found")

    def _resolve_repo(self, params: dict[str, str]) -> str | None:
        with self.lock:
            if "rid" in params:
                rid = int(params["rid"])
                for ident, full_name in self.repo_ids.values():
                    if ident == rid:
                        return full_name
                raise _refuse(404, "Not Found")
            if "owner" in params:
                full_name = f"{params['owner']}/{params['name']}"
                if not REPO_NAME_RE.match(full_name):
                    raise _refuse(404, "Not Found")
                return self._register_repo(full_name)[1]
        return None

    def _require_auth(self, route: Route, auth: Auth) -> None:
        if route.kind == "app" or route.handler == "repo_installation":
            if auth.kind != "app-jwt":
                raise _refuse(401, auth.jwt_message)
            return
        if auth.kind in ("invalid", "expired-token"):
            raise _refuse(401, "Bad credentials")
        if route.kind == "meta":
            return
        if auth.kind == "none":
            raise _refuse(401, "Requires authentication")
        if route.kind == "installation" and auth.kind != "installation-token":
            raise _refuse(401, "Bad credentials")

    def _rate_limit(
        self,
        route: Route,
        auth: Auth,
        bucket: RateBucket,
        repo: str | None,
        entry: dict[str, Any],
        now: float,
    ) -> None:
        with self.lock:
            injected = None
            if route.kind == "repo":
                injected = self._take_injection("primary", repo)
            if injected is None and bucket.used >= bucket.limit:
                injected = {"kind": "primary", "status": 403, "resetIn": bucket.reset - now}
                natural = True
            else:
                natural = False
                bucket.used += 1
            if injected is None and route.handler == "create_status":
                injected = self._take_injection("secondary", repo)
        if injected is None:
            return
        entry["rateLimited"] = injected["kind"]
        status = injected["status"]
        if injected["kind"] == "primary":
            if auth.kind == "installation-token":
                who = f"installation ID {auth.installation_id}"
            elif auth.kind == "app-jwt":
                who = f"integration ID {self.config.app_id}"
            else:
                who = "user ID 1"
            headers = bucket.headers()
            headers.update(
                {
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": str(bucket.limit),
                    "x-ratelimit-reset": str(int(now + injected["resetIn"])),
                }
            )
            if not natural:
                # The injected window replaces the bucket's, so later headers agree.
                bucket.reset = max(bucket.reset, now + injected["resetIn"])
            message = (
                f"API rate limit exceeded for {who}. If you reach out to GitHub Support for "
                f"help, please include the request ID {secrets.token_hex(8).upper()}."
            )
            raise Refusal(status, models.error(message, status, DOC_PRIMARY), headers)
        entry["retryAfter"] = injected["retryAfter"]
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again. If you reach out to GitHub Support for help, please include the "
            f"request ID {secrets.token_hex(8).upper()}."
        )
        raise Refusal(
            status,
            models.error(message, status, DOC_SECONDARY),
            {"retry-after": str(injected["retryAfter"])},
        )

    def _take_injection(self, kind: str, repo: str | None) -> dict[str, Any] | None:
        for injection in self.injections:
            if injection["kind"] != kind or injection["remaining"] <= 0:
                continue
            if injection["repo"] and (repo or "").lower() != injection["repo"].lower():
                continue
            injection["remaining"] -= 1
            if injection["remaining"] == 0:
                self.injections.remove(injection)
            return injection
        return None

    def _require_repo_access(self, auth: Auth, repo: str | None, write: bool) -> None:
        assert repo is not None
        key = repo.lower()
        if auth.kind == "app-jwt":
            raise _refuse(403, "Resource not accessible by integration")
        if auth.kind == "static-token":
            if auth.static_repos is not None and key not in (r.lower() for r in auth.static_repos):
                raise _refuse(404, "Not Found")
            return
        token = auth.token
        assert token is not None
        with self.lock:
            inst = self.installations.get(token.installation_id)
            allowed = token.repos if token.repos is not None else (inst.repos if inst else [])
        if key not in (r.lower() for r in allowed):
            raise _refuse(404, "Not Found")
        have = LEVELS.get(token.permissions.get("statuses", ""), 0)
        if have < (2 if write else 1):
            raise _refuse(
                403,
                "Resource not accessible by integration",
                DOC_STATUS_CREATE if write else DOC_STATUS_LIST,
            )

    # ------------------------------------------------------------------ handlers
    # Each returns (status, body, extra headers).

    def _installation_json(self, base: str, inst: Installation) -> dict[str, Any]:
        acct = models.account(base, inst.owner)
        return {
            "id": inst.id,
            "client_id": self.config.client_id,
            "account": acct,
            "repository_selection": "selected",
            "access_tokens_url": f"{base}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{base}/installation/repositories",
            "html_url": (
                f"{models.HTML}/organizations/{inst.owner}/settings/installations/{inst.id}"
            ),
            "app_id": self.config.app_id,
            "app_slug": self.config.app_slug,
            "target_id": acct["id"],
            "target_type": "Organization",
            "permissions": dict(inst.permissions),
            "events": [],
            "created_at": models.iso(inst.created),
            "updated_at": models.iso(inst.created),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def _base(self, req: Request) -> str:
        return req.host_url.rstrip("/")

    def _h_get_app(self, req, params, repo, auth, entry, now):
        base = self._base(req)
        owner = models.author(
            base, "github-fake", models.stable_id("account", "github-fake"), "Organization"
        )
        with self.lock:
            count = len(self.installations)
        body = {
            "id": self.config.app_id,
            "slug": self.config.app_slug,
            "node_id": models.node_id("03:App", self.config.app_id or 0),
            "client_id": self.config.client_id,
            "owner": owner,
            "name": self.config.app_slug,
            "description": "github_fake test App",
            "external_url": f"{base}/",
            "html_url": f"{models.HTML}/apps/{self.config.app_slug}",
            "created_at": models.iso(self.started),
            "updated_at": models.iso(self.started),
            "permissions": dict(DEFAULT_PERMISSIONS),
            "events": [],
            "installations_count": count,
        }
        return 200, body, {}

    def _h_list_installations(self, req, params, repo, auth, entry, now):
        base = self._base(req)
        per_page, page = _paging(req)
        with self.lock:
            insts = sorted(self.installations.values(), key=lambda i: i.id)
        items = insts[(page - 1) * per_page : page * per_page]
        headers = {}
        link = _link_header(
            f"{self._link_base(base)}/app/installations", {}, per_page, page, len(insts)
        )
        if link:
            headers["Link"] = link
        return 200, [self._installation_json(base, i) for i in items], headers

    def _h_get_installation(self, req, params, repo, auth, entry, now):
        iid = int(params["iid"])
        entry["installationId"] = iid
        with self.lock:
            inst = self.installations.get(iid)
        if inst is None:
            raise _refuse(
                404,
                "Not Found",
                "https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app",
            )
        return 200, self._installation_json(self._base(req), inst), {}

    def _h_repo_installation(self, req, params, repo, auth, entry, now):
        with self.lock:
            inst = self._installation_of(repo)
        if inst is None:
            raise _refuse(404, "Not Found", DOC_REPO_INSTALLATION)
        entry["installationId"] = inst.id
        return 200, self._installation_json(self._base(req), inst), {}

    def _h_create_token(self, req, params, repo, auth, entry, now):
        iid = int(params["iid"])
        entry["installationId"] = iid
        with self.lock:
            inst = self.installations.get(iid)
        if inst is None:
            raise _refuse(404, "Not Found", DOC_ACCESS_TOKEN)
        body = self._json_body(req, allow_empty=True)
        scoped: list[str] | None = None
        names, ids = body.get("repositories"), body.get("repository_ids")
        if names is not None or ids is not None:
            scoped = []
            with self.lock:
                by_name = {r.split("/", 1)[1].lower(): r for r in inst.repos}
                by_id = {self._register_repo(r)[0]: r for r in inst.repos}
            for name in names or []:
                found = by_name.get(name.lower()) if isinstance(name, str) else None
                if found is None:
                    raise self._not_accessible_repos()
                scoped.append(found)
            for ident in ids or []:
                found = by_id.get(ident) if isinstance(ident, int) else None
                if found is None:
                    raise self._not_accessible_repos()
                scoped.append(found)
            scoped = list(dict.fromkeys(scoped))
        permissions = dict(inst.permissions)
        wanted = body.get("permissions")
        if wanted is not None:
            if not isinstance(wanted, dict):
                raise _refuse(
                    422,
                    "Invalid request.\n\nFor 'properties/permissions', value is not an object.",
                    DOC_ACCESS_TOKEN,
                )
            for key, level in wanted.items():
                if LEVELS.get(level, 99) > LEVELS.get(inst.permissions.get(key, ""), 0):
                    raise _refuse(
                        422,
                        "The permissions requested are not granted to this installation.",
                        DOC_ACCESS_TOKEN,
                    )
            permissions = dict(wanted)
        value = "ghs_" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))
        token = IssuedToken(value, iid, now, now + self.config.token_ttl, permissions, scoped)
        with self.lock:
            self.tokens[value] = token
            self.token_order.append(token)
        result: dict[str, Any] = {
            "token": value,
            "expires_at": models.iso(token.expires),
            "permissions": permissions,
            "repository_selection": "selected",
        }
        if scoped is not None:
            base = self._base(req)
            with self.lock:
                result["repositories"] = [
                    models.repository(base, r, self._register_repo(r)[0]) for r in scoped
                ]
        return 201, result, {}

    @staticmethod
    def _not_accessible_repos() -> Refusal:
        return _refuse(
            422,
            "There is at least one repository that does not exist or is not accessible to the "
            "parent installation.",
            DOC_ACCESS_TOKEN,
        )

    def _h_installation_repos(self, req, params, repo, auth, entry, now):
        token = auth.token
        assert token is not None
        base = self._base(req)
        with self.lock:
            inst = self.installations[token.installation_id]
            repos = token.repos if token.repos is not None else list(inst.repos)
            items = [models.repository(base, r, self._register_repo(r)[0]) for r in repos]
        per_page, page = _paging(req)
        headers = {}
        link = _link_header(
            f"{self._link_base(base)}/installation/repositories", {}, per_page, page, len(items)
        )
        if link:
            headers["Link"] = link
        body = {
            "total_count": len(items),
            "repository_selection": "selected",
            "repositories": items[(page - 1) * per_page : page * per_page],
        }
        return 200, body, headers

    def _h_revoke_token(self, req, params, repo, auth, entry, now):
        with self.lock:
            assert auth.token is not None
            auth.token.revoked = True
        return 204, None, {}

    def _h_rate_limit(self, req, params, repo, auth, entry, now):
        # GET /rate_limit does not count against the limit.
        with self.lock:
            bucket = self._bucket(auth, req, now)
            core = {
                "limit": bucket.limit,
                "used": bucket.used,
                "remaining": max(bucket.limit - bucket.used, 0),
                "reset": int(bucket.reset),
            }
        search = {"limit": 30, "used": 0, "remaining": 30, "reset": int(now) + 60}
        return 200, {"resources": {"core": core, "search": search}, "rate": core}, {}

    def _json_body(self, req: Request, allow_empty: bool = False) -> dict[str, Any]:
        raw = req.get_data(cache=True)
        if not raw.strip() and allow_empty:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _refuse(400, "Problems parsing JSON") from None
        if not isinstance(body, dict):
            raise _refuse(400, "Problems parsing JSON")
        return body

    def _h_create_status(self, req, params, repo, auth, entry, now):
        sha = params["ref"]
        if not SHA_RE.match(sha):
            raise _refuse(422, f"No commit found for SHA: {sha}", DOC_STATUS_CREATE)
        sha = sha.lower()
        body = self._json_body(req)
        if "state" not in body:
            raise _refuse(422, 'Invalid request.\n\n"state" wasn\'t supplied.', DOC_STATUS_CREATE)
        state = body["state"]
        if state not in STATES or not isinstance(state, str):
            raise _refuse(
                422,
                f"Invalid request.\n\nFor 'properties/state', {json.dumps(state)} "
                "is not a member of enum.",
                DOC_STATUS_CREATE,
            )
        for key in ("target_url", "description", "context"):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise _refuse(
                    422,
                    f"Invalid request.\n\nFor 'properties/{key}', {json.dumps(value)} "
                    "is not a string or null.",
                    DOC_STATUS_CREATE,
                )
        description = body.get("description")
        if description is not None and len(description) > DESCRIPTION_MAX:
            raise _refuse(
                422,
                "Validation Failed",
                DOC_STATUS_CREATE,
                errors=[
                    {
                        "resource": "Status",
                        "code": "custom",
                        "field": "description",
                        "message": (
                            f"description is too long (maximum is {DESCRIPTION_MAX} characters)"
                        ),
                    }
                ],
            )
        context = body.get("context")
        if context is None:
            context = "default"
        base = self._base(req)
        creator = self._creator(base, auth)
        with self.lock:
            same = sum(
                1
                for s in self.statuses
                if s["repo"].lower() == repo.lower() and s["sha"] == sha and s["context"] == context
            )
            if same >= self.config.status_limit:
                raise _refuse(
                    422,
                    "Validation Failed",
                    DOC_STATUS_CREATE,
                    errors=[
                        {
                            "resource": "Status",
                            "code": "custom",
                            "message": (
                                "This SHA and context has reached the maximum number of statuses."
                            ),
                        }
                    ],
                )
            self.status_seq += 1
            record = {
                "id": self.status_seq,
                "repo": repo,
                "sha": sha,
                "state": state,
                "description": description,
                "target_url": body.get("target_url"),
                "context": context,
                "time": now,
                "auth": auth.kind,
                "installationId": auth.installation_id,
                "creator": creator,
                "avatarUrl": creator["avatar_url"],
            }
            self.statuses.append(record)
        obj = models.status_object(base, record, creator)
        return 201, obj, {"Location": obj["url"]}

    def _creator(self, base: str, auth: Auth) -> dict[str, Any]:
        if auth.kind == "installation-token":
            login = f"{self.config.app_slug}[bot]"
            author = models.author(base, login, models.stable_id("account", login), "Bot")
            author["avatar_url"] = (
                f"https://avatars.githubusercontent.com/in/{self.config.app_id}?v=4"
            )
            return author
        login = "github-fake-user"
        return models.author(base, login, models.stable_id("account", login), "User")

    def _resolve_ref(self, repo: str, ref: str) -> str | None:
        """A commit SHA, or a branch / tag registered with POST /_fake/refs
        (``main``, ``heads/main``, ``refs/heads/main``, ``tags/v1``, ``refs/tags/v1``)."""
        if SHA_RE.match(ref):
            return ref.lower()
        name = ref[len("refs/") :] if ref.startswith("refs/") else ref
        key = repo.lower()
        with self.lock:
            if name.startswith("heads/"):
                return self.refs.get((key, "branch", name[len("heads/") :]))
            if name.startswith("tags/"):
                return self.refs.get((key, "tag", name[len("tags/") :]))
            return self.refs.get((key, "branch", name)) or self.refs.get((key, "tag", name))

    def _statuses_for(self, repo: str, sha: str | None) -> list[dict[str, Any]]:
        if sha is None:
            return []
        with self.lock:
            return [
                s for s in self.statuses if s["repo"].lower() == repo.lower() and s["sha"] == sha
            ]

    def _link_base(self, base: str) -> str:
        return "" if self.config.relative_links else base

    def _h_list_statuses(self, req, params, repo, auth, entry, now):
        ref = params["ref"]
        items = list(reversed(self._statuses_for(repo, self._resolve_ref(repo, ref))))
        per_page, page = _paging(req)
        base = self._base(req)
        page_items = items[(page - 1) * per_page : page * per_page]
        headers = {}
        rid = self._register_repo(repo)[0]
        query = {k: v for k, v in req.args.items() if k not in ("page", "per_page")}
        link = _link_header(
            f"{self._link_base(base)}/repositories/{rid}/commits/{ref}/statuses",
            query,
            per_page,
            page,
            len(items),
        )
        if link:
            headers["Link"] = link
        body = [models.status_object(base, s, s["creator"]) for s in page_items]
        return 200, body, headers

    def _h_combined_status(self, req, params, repo, auth, entry, now):
        ref = params["ref"]
        resolved = self._resolve_ref(repo, ref)
        latest: dict[str, dict[str, Any]] = {}
        for record in self._statuses_for(repo, resolved):
            latest[record["context"]] = record
        contexts = sorted(latest.values(), key=lambda s: s["id"])
        states = {s["state"] for s in contexts}
        if states & {"error", "failure"}:
            combined = "failure"
        elif not contexts or "pending" in states:
            combined = "pending"
        else:
            combined = "success"
        per_page, page = _paging(req)
        base = self._base(req)
        rid = self._register_repo(repo)[0]
        sha = resolved or ref
        headers = {}
        query = {k: v for k, v in req.args.items() if k not in ("page", "per_page")}
        link = _link_header(
            f"{self._link_base(base)}/repositories/{rid}/commits/{ref}/status",
            query,
            per_page,
            page,
            len(contexts),
        )
        if link:
            headers["Link"] = link
        body = {
            "state": combined,
            "statuses": [
                models.status_object(base, s, None)
                for s in contexts[(page - 1) * per_page : page * per_page]
            ],
            "sha": sha,
            "total_count": len(contexts),
            "repository": models.repository(base, repo, rid),
            "commit_url": f"{base}/repos/{repo}/commits/{sha}",
            "url": f"{base}/repos/{repo}/commits/{sha}/status",
        }
        return 200, body, headers

    # ------------------------------------------------------------------ /_fake
    def _control(self, req: Request) -> Response:
        path, method = req.path, req.method
        if method == "GET" and path == "/_fake/health":
            with self.lock:
                count = len(self.installations)
            return _json_response(
                200, {"ok": True, "appId": self.config.app_id, "installations": count}
            )
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            return _json_response(200, {"ok": True})
        if method == "GET" and path == "/_fake/requests":
            with self.lock:
                return _json_response(200, {"requests": [dict(e) for e in self.requests]})
        if method == "POST" and path == "/_fake/requests/reset":
            with self.lock:
                self.requests.clear()
            return _json_response(200, {"ok": True})
        if method == "GET" and path == "/_fake/statuses":
            repo, sha = req.args.get("repo"), req.args.get("sha")
            with self.lock:
                items = [
                    {k: v for k, v in s.items() if k not in ("creator", "avatarUrl")}
                    for s in self.statuses
                    if (repo is None or s["repo"].lower() == repo.lower())
                    and (sha is None or s["sha"] == sha.lower())
                ]
            for item in items:
                item["createdAt"] = models.iso(item["time"])
            return _json_response(200, {"statuses": items})
        if method == "GET" and path == "/_fake/tokens":
            now = time.time()
            with self.lock:
                tokens = [
                    {
                        "token": t.value,
                        "installationId": t.installation_id,
                        "issuedAt": t.issued,
                        "expiresAt": t.expires,
                        "expired": now >= t.expires,
                        "revoked": t.revoked,
                        "permissions": dict(t.permissions),
                        "repositories": t.repos,
                    }
                    for t in self.token_order
                ]
            static = [
                {"token": value, "repositories": repos}
                for value, repos in self.config.static_tokens
            ]
            return _json_response(200, {"tokens": tokens, "staticTokens": static})
        if method == "POST" and path == "/_fake/expire-tokens":
            now = time.time()
            with self.lock:
                count = 0
                for token in self.token_order:
                    if token.expires > now:
                        token.expires = now
                        count += 1
            return _json_response(200, {"expired": count})
        if path == "/_fake/installations":
            if method == "GET":
                with self.lock:
                    items = [
                        {
                            "id": i.id,
                            "repositories": list(i.repos),
                            "permissions": dict(i.permissions),
                            "fromCli": i.from_cli,
                        }
                        for i in sorted(self.installations.values(), key=lambda i: i.id)
                    ]
                return _json_response(200, {"installations": items})
            if method == "POST":
                body = json.loads(req.get_data() or b"{}")
                ident = body["id"]
                if not isinstance(ident, int) or isinstance(ident, bool) or ident <= 0:
                    raise ValueError("id must be a positive integer")
                repos = parse_repos(body["repositories"])
                permissions = body.get("permissions")
                if permissions is not None and not isinstance(permissions, dict):
                    raise ValueError("permissions must be an object")
                with self.lock:
                    inst = self._add_installation(ident, repos, permissions, from_cli=False)
                return _json_response(
                    201,
                    {"id": inst.id, "repositories": inst.repos, "permissions": inst.permissions},
                )
        found = re.match(r"^/_fake/installations/(\d+)$", path)
        if found and method == "DELETE":
            with self.lock:
                inst = self.installations.pop(int(found.group(1)), None)
            if inst is None:
                return _json_response(404, {"error": "no such installation"})
            return _json_response(200, {"ok": True})
        if method == "POST" and path == "/_fake/refs":
            body = json.loads(req.get_data() or b"{}")
            repo, sha = body["repo"], body["sha"]
            if not isinstance(repo, str) or not REPO_NAME_RE.match(repo):
                raise ValueError("repo must be owner/name")
            if not isinstance(sha, str) or not SHA_RE.match(sha):
                raise ValueError("sha must be a full commit SHA")
            kinds = [k for k in ("branch", "tag") if k in body]
            if len(kinds) != 1 or not isinstance(body[kinds[0]], str) or not body[kinds[0]]:
                raise ValueError("give exactly one of branch or tag")
            with self.lock:
                self.refs[(repo.lower(), kinds[0], body[kinds[0]])] = sha.lower()
            return _json_response(200, {"ok": True})
        if path == "/_fake/rate-limit":
            if method == "POST":
                return _json_response(200, self._inject(json.loads(req.get_data() or b"{}")))
            if method == "GET":
                with self.lock:
                    return _json_response(200, {"injections": [dict(i) for i in self.injections]})
        return _json_response(404, {"error": f"no control endpoint {method} {path}"})

    def _inject(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("kind")
        if kind not in ("primary", "secondary"):
            raise ValueError("kind must be primary or secondary")

        def number(key: str, default: int) -> int:
            value = body.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer")
            return value

        count = number("count", 1)
        status = body.get("status", 403)
        if status not in (403, 429):
            raise ValueError("status must be 403 or 429")
        repo = body.get("repo")
        if repo is not None and not isinstance(repo, str):
            raise ValueError("repo must be owner/name")
        injection: dict[str, Any] = {
            "kind": kind,
            "count": count,
            "remaining": count,
            "status": status,
            "repo": repo,
        }
        if kind == "secondary":
            injection["retryAfter"] = number("retryAfter", 60)
        else:
            injection["resetIn"] = number("resetIn", 60)
        with self.lock:
            if count > 0:
                self.injections.append(injection)
            return {"ok": True, "injections": [dict(i) for i in self.injections]}
