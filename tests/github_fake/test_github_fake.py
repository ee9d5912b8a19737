"""Tests of the fake GitHub API (stdlib unittest).

    $HOME/.cache/branchpipeline-controller/moto-5.2.5/bin/python -m unittest discover \
        -s tests/github_fake -p 'test_*.py'

The server runs as a subprocess (as the Rust test bed starts it); a few cases that need
many requests drive the WSGI app in-process through werkzeug's test client instead.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from github_fake import jwt_rs256  # noqa: E402
from github_fake.server import Config, GitHubFake  # noqa: E402

APP_ID = 424242
SHA = "0123456789abcdef0123456789abcdef01234567"
SHA2 = "89abcdef0123456789abcdef0123456789abcdef"
STATIC = "github_pat_statictoken0123456789"
RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-used",
    "x-ratelimit-resource",
)

APP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mint_jwt(
    key: rsa.RSAPrivateKey = APP_KEY,
    iss: Any = APP_ID,
    iat: float | None = None,
    exp: float | None = None,
    alg: str = "RS256",
) -> str:
    """An App JWT, by hand: RS256 (PKCS#1 v1.5, SHA-256). Defaults as octocrab 0.54.9."""
    now = int(time.time())
    claims = {
        "iat": now - 60 if iat is None else int(iat),
        "exp": now + 540 if exp is None else int(exp),
        "iss": iss,
    }
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(signature)}"


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# ---------------------------------------------------------------- octocrab 0.54.9 shapes
# Required members (non-Option, no serde default) of the models octocrab deserializes.

AUTHOR_URLS = (
    "avatar_url",
    "url",
    "html_url",
    "followers_url",
    "following_url",
    "gists_url",
    "starred_url",
    "subscriptions_url",
    "organizations_url",
    "repos_url",
    "events_url",
    "received_events_url",
)


def is_abs_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Shapes(unittest.TestCase):
    """Mixin: checks a body against octocrab's serde models."""

    def assert_author(self, a: dict[str, Any]) -> None:  # models::Author
        self.assertIsInstance(a["login"], str)
        self.assertIsInstance(a["id"], int)
        self.assertIsInstance(a["node_id"], str)
        self.assertIsInstance(a["gravatar_id"], str)
        self.assertIsInstance(a["type"], str)
        self.assertIsInstance(a["site_admin"], bool)
        for key in AUTHOR_URLS:
            self.assertTrue(is_abs_url(a[key]), f"Author.{key} = {a.get(key)!r}")

    def assert_repository(self, r: dict[str, Any]) -> None:  # models::Repository
        self.assertIsInstance(r["id"], int)
        self.assertIsInstance(r["name"], str)
        self.assertTrue(is_abs_url(r["url"]))
        self.assertTrue(is_abs_url(r["html_url"]))
        self.assert_author(r["owner"])

    def assert_installation(self, i: dict[str, Any]) -> None:  # models::Installation
        self.assertIsInstance(i["id"], int)
        self.assert_author(i["account"])
        self.assertIsInstance(i["permissions"], dict)
        for value in i["permissions"].values():
            self.assertIsInstance(value, str)
        self.assertIsInstance(i["events"], list)
        self.assertIsInstance(i["app_id"], int)
        self.assertIsInstance(i["target_id"], int)
        for key in ("created_at", "updated_at"):
            datetime.strptime(i[key], "%Y-%m-%dT%H:%M:%SZ")

    def assert_status(self, s: dict[str, Any], creator: bool) -> None:  # models::Status
        self.assertIn(s["state"], ("error", "failure", "pending", "success"))
        self.assertIsInstance(s["id"], int)
        for key in ("created_at", "updated_at"):
            datetime.strptime(s[key], "%Y-%m-%dT%H:%M:%SZ")
        if creator:
            self.assert_author(s["creator"])
        else:
            self.assertNotIn("creator", s)

    def assert_error(self, body: dict[str, Any], status: int, message: str | None = None) -> None:
        self.assertIsInstance(body["message"], str)  # octocrab GitHubErrorBody
        self.assertTrue(is_abs_url(body["documentation_url"]))
        self.assertEqual(body["status"], str(status))
        if message is not None:
            self.assertEqual(body["message"], message)


# ---------------------------------------------------------------- a server process


class Server:
    def __init__(self, *extra: str):
        self.tmp = tempfile.TemporaryDirectory()
        key_file = os.path.join(self.tmp.name, "app.pem")
        with open(key_file, "w") as f:
            f.write(public_pem(APP_KEY))
        self.port_file = os.path.join(self.tmp.name, "port")
        self.out = open(os.path.join(self.tmp.name, "out"), "w+")
        self.err = open(os.path.join(self.tmp.name, "err"), "w+")
        args = [
            sys.executable,
            os.path.join(HERE, "run_github.py"),
            "--port",
            "0",
            "--port-file",
            self.port_file,
            "--app-id",
            str(APP_ID),
            "--app-public-key",
            key_file,
            "--installation",
            "42=acme/orders-api,acme/billing-api",
            "--installation",
            "43=globex/web",
            "--static-token",
            STATIC,
            *extra,
        ]
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.err)
        deadline = time.time() + 10
        while time.time() < deadline:
            self.out.seek(0)
            found = re.search(r"^BPL_GITHUB_LISTENING (\d+)$", self.out.read(), re.M)
            if found:
                self.port = int(found.group(1))
                break
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise RuntimeError(f"server exited: {self.err.read()}")
            time.sleep(0.02)
        else:
            raise RuntimeError("server did not report its port")
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        self.proc.wait(5)
        self.out.seek(0)
        self.err.seek(0)
        output = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        self.tmp.cleanup()
        return output

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        auth: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        url = path if path.startswith("http") else self.base + path
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, headers, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            status, headers, payload = err.code, err.headers, err.read()
        hdrs = {k.lower(): v for k, v in headers.items()}
        return status, hdrs, json.loads(payload) if payload else None


def bearer(value: str) -> str:
    return f"Bearer {value}"


class ServerTest(Shapes):
    server: Server
    extra: tuple[str, ...] = ()

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(*cls.extra)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        status, _, _ = self.call("POST", "/_fake/reset")
        self.assertEqual(status, 200)

    def call(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return self.server.call(*args, **kwargs)

    def token(self, installation: int = 42, body: Any = None) -> str:
        status, _, created = self.call(
            "POST",
            f"/app/installations/{installation}/access_tokens",
            body or {},
            bearer(mint_jwt()),
        )
        self.assertEqual(status, 201, created)
        return created["token"]

    def post_status(self, auth: str, repo: str = "acme/orders-api", sha: str = SHA, **body: Any):
        return self.call("POST", f"/repos/{repo}/statuses/{sha}", body, auth)

    def requests_log(self) -> list[dict[str, Any]]:
        return self.call("GET", "/_fake/requests")[2]["requests"]


class AppAuthTest(ServerTest):
    def test_valid_jwt_octocrab_shape(self) -> None:
        status, headers, app = self.call("GET", "/app", auth=bearer(mint_jwt()))
        self.assertEqual(status, 200, app)
        self.assertEqual(app["id"], APP_ID)
        self.assert_author(app["owner"])  # models::apps::App
        self.assertTrue(is_abs_url(app["external_url"]) and is_abs_url(app["html_url"]))
        self.assertIsInstance(app["node_id"], str)
        self.assertIsInstance(app["permissions"], dict)
        self.assertIsInstance(app["events"], list)
        for name in RATE_HEADERS:
            self.assertIn(name, headers)

    def test_valid_jwt_variants(self) -> None:
        now = int(time.time())
        for token in (
            mint_jwt(iat=now - 60, exp=now + 600),  # GitHub's documented example
            mint_jwt(iss=str(APP_ID)),  # iss as a string
            mint_jwt(iat=now, exp=now + 600),
        ):
            status, _, body = self.call("GET", "/app/installations", auth=bearer(token))
            self.assertEqual(status, 200, body)
            self.assertEqual([i["id"] for i in body], [42, 43])
            for inst in body:
                self.assert_installation(inst)

    def test_invalid_jwts_are_401(self) -> None:
        now = int(time.time())
        cases = {
            "wrong key": (mint_jwt(key=OTHER_KEY), jwt_rs256.UNDECODABLE),
            "wrong iss": (mint_jwt(iss=APP_ID + 1), jwt_rs256.UNDECODABLE),
            "wrong iss string": (mint_jwt(iss="Iv1.nope"), jwt_rs256.UNDECODABLE),
            "HS256": (mint_jwt(alg="HS256"), jwt_rs256.UNDECODABLE),
            "expired": (mint_jwt(iat=now - 700, exp=now - 100), jwt_rs256.EXPIRED),
            "exp too far": (mint_jwt(iat=now - 60, exp=now + 660), jwt_rs256.TOO_FAR),
            "exp > iat + 660": (mint_jwt(iat=now - 100, exp=now + 590), jwt_rs256.TOO_FAR),
            "exp > now + 600": (mint_jwt(iat=now, exp=now + 630), jwt_rs256.TOO_FAR),
            "iat in future": (mint_jwt(iat=now + 30, exp=now + 300), jwt_rs256.BAD_IAT),
            "not a jwt": ("garbage", jwt_rs256.UNDECODABLE),
        }
        for name, (token, message) in cases.items():
            with self.subTest(name):
                status, headers, body = self.call(
                    "POST", "/app/installations/42/access_tokens", {}, bearer(token)
                )
                self.assertEqual(status, 401)
                self.assert_error(body, 401, message)
                self.assertIn("x-ratelimit-limit", headers)
        # A tampered payload with the original signature.
        head, _, sig = mint_jwt().split(".")
        forged = b64url(
            json.dumps({"iat": now - 60, "exp": now + 540, "iss": APP_ID, "x": 1}).encode()
        )
        status, _, _ = self.call("GET", "/app", auth=bearer(f"{head}.{forged}.{sig}"))
        self.assertEqual(status, 401)
        self.assertTrue(all(e["auth"] == "invalid" for e in self.requests_log()))

    def test_jwt_not_accepted_for_statuses_nor_tokens_for_app(self) -> None:
        status, _, body = self.post_status(bearer(mint_jwt()), state="success")
        self.assertEqual(status, 403)
        self.assert_error(body, 403, "Resource not accessible by integration")
        token = self.token()
        status, _, body = self.call(
            "GET", "/repos/acme/orders-api/installation", auth=bearer(token)
        )
        self.assertEqual(status, 401)
        self.assert_error(body, 401, jwt_rs256.UNDECODABLE)
        status, _, _ = self.call("GET", "/app", auth=bearer(STATIC))
        self.assertEqual(status, 401)


class InstallationTest(ServerTest):
    def test_repo_installation_lookup(self) -> None:
        jwt = bearer(mint_jwt())
        status, _, inst = self.call("GET", "/repos/acme/orders-api/installation", auth=jwt)
        self.assertEqual(status, 200, inst)
        self.assert_installation(inst)
        self.assertEqual(inst["id"], 42)
        self.assertEqual(inst["account"]["login"], "acme")
        self.assertEqual(inst["app_id"], APP_ID)
        self.assertEqual(inst["permissions"], {"metadata": "read", "statuses": "write"})
        self.assertEqual(inst["repository_selection"], "selected")
        self.assertTrue(inst["access_tokens_url"].endswith("/app/installations/42/access_tokens"))
        # GitHub's owner and repository names are case-insensitive.
        status, _, inst = self.call("GET", "/repos/ACME/Billing-API/installation", auth=jwt)
        self.assertEqual((status, inst["id"]), (200, 42))
        status, _, body = self.call("GET", "/repos/acme/unknown/installation", auth=jwt)
        self.assertEqual(status, 404)
        self.assert_error(body, 404, "Not Found")
        status, _, inst = self.call("GET", "/app/installations/43", auth=jwt)
        self.assertEqual((status, inst["account"]["login"]), (200, "globex"))
        self.assertEqual(self.call("GET", "/app/installations/99", auth=jwt)[0], 404)
        log = self.requests_log()
        self.assertEqual([e["auth"] for e in log], ["app-jwt"] * 5)
        self.assertEqual(log[0]["installationId"], 42)

    def test_installations_added_at_runtime_and_reset(self) -> None:
        status, _, body = self.call(
            "POST", "/_fake/installations", {"id": 77, "repositories": ["initech/tps"]}
        )
        self.assertEqual(status, 201, body)
        jwt = bearer(mint_jwt())
        status, _, inst = self.call("GET", "/repos/initech/tps/installation", auth=jwt)
        self.assertEqual((status, inst["id"]), (200, 77))
        # One account per installation; a repository belongs to one installation.
        bad = [
            {"id": 78, "repositories": ["a/x", "b/y"]},
            {"id": 79, "repositories": ["acme/orders-api"]},
            {"id": 80, "repositories": []},
            {"id": "x", "repositories": ["c/d"]},
        ]
        for body in bad:
            self.assertEqual(self.call("POST", "/_fake/installations", body)[0], 400, body)
        self.call("POST", "/_fake/reset")
        self.assertEqual(self.call("GET", "/repos/initech/tps/installation", auth=jwt)[0], 404)
        self.assertEqual(self.call("GET", "/repos/acme/orders-api/installation", auth=jwt)[0], 200)
        # Reset restores the command line's installations, even replaced or deleted ones.
        self.call("POST", "/_fake/installations", {"id": 42, "repositories": ["acme/new"]})
        self.assertEqual(self.call("GET", "/repos/acme/orders-api/installation", auth=jwt)[0], 404)
        self.call("DELETE", "/_fake/installations/43")
        self.call("POST", "/_fake/reset")
        for repo in ("acme/orders-api", "globex/web"):
            self.assertEqual(self.call("GET", f"/repos/{repo}/installation", auth=jwt)[0], 200)
        self.assertEqual(self.call("GET", "/repos/acme/new/installation", auth=jwt)[0], 404)
        # Uninstalling revokes the installation's tokens.
        self.call("POST", "/_fake/installations", {"id": 77, "repositories": ["initech/tps"]})
        token = self.token(77)
        self.assertEqual(self.post_status(bearer(token), "initech/tps", state="success")[0], 201)
        self.assertEqual(self.call("DELETE", "/_fake/installations/77")[0], 200)
        status, _, body = self.post_status(bearer(token), "initech/tps", state="success")
        self.assertEqual(status, 401)
        self.assert_error(body, 401, "Bad credentials")


class TokenTest(ServerTest):
    def test_issue_and_use(self) -> None:
        before = time.time()
        status, headers, created = self.call(
            "POST", "/app/installations/42/access_tokens", {}, bearer(mint_jwt())
        )
        self.assertEqual(status, 201, created)
        token = created["token"]  # models::InstallationToken
        self.assertRegex(token, r"^ghs_[A-Za-z0-9]{36}$")
        self.assertEqual(created["permissions"], {"metadata": "read", "statuses": "write"})
        self.assertEqual(created["repository_selection"], "selected")
        self.assertNotIn("repositories", created)
        expires = datetime.strptime(created["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
        expires_ts = expires.replace(tzinfo=UTC).timestamp()
        self.assertAlmostEqual(expires_ts, before + 3600, delta=2)
        self.assertIn("x-ratelimit-remaining", headers)

        for kind in ("Bearer", "token"):
            status, _, body = self.post_status(f"{kind} {token}", state="success")
            self.assertEqual(status, 201, body)
        status, _, body = self.post_status(bearer(token), "acme/billing-api", state="pending")
        self.assertEqual(status, 201, body)
        self.assertEqual(body["creator"]["type"], "Bot")
        self.assertEqual(body["creator"]["login"], "branchpipeline-fake[bot]")
        # Another installation's repository, and one in no installation: 404 as GitHub.
        for repo in ("globex/web", "acme/elsewhere"):
            status, _, body = self.post_status(bearer(token), repo, state="success")
            self.assertEqual(status, 404, repo)
            self.assert_error(body, 404, "Not Found")
            status, _, _ = self.call(
                "GET", f"/repos/{repo}/commits/{SHA}/statuses", auth=bearer(token)
            )
            self.assertEqual(status, 404)
        status, _, body = self.call(
            "POST", "/app/installations/99/access_tokens", {}, bearer(mint_jwt())
        )
        self.assertEqual(status, 404)
        log = self.requests_log()
        self.assertEqual(log[1]["auth"], "installation-token")
        self.assertEqual(log[1]["installationId"], 42)
        self.assertEqual(log[0]["installationId"], 42)

        issued = self.call("GET", "/_fake/tokens")[2]
        self.assertEqual([t["token"] for t in issued["tokens"]], [token])
        self.assertEqual(issued["tokens"][0]["installationId"], 42)
        self.assertFalse(issued["tokens"][0]["expired"])
        self.assertEqual(issued["staticTokens"], [{"token": STATIC, "repositories": None}])

    def test_expire_tokens_then_renew(self) -> None:
        token = self.token()
        self.assertEqual(self.post_status(bearer(token), state="pending")[0], 201)
        status, body = self.call("POST", "/_fake/expire-tokens")[0::2]
        self.assertEqual((status, body["expired"]), (200, 1))
        status, _, body = self.post_status(bearer(token), state="success")
        self.assertEqual(status, 401)
        self.assert_error(body, 401, "Bad credentials")
        renewed = self.token()
        self.assertNotEqual(renewed, token)
        self.assertEqual(self.post_status(bearer(renewed), state="success")[0], 201)
        kinds = [e["auth"] for e in self.requests_log()]
        self.assertEqual(
            kinds,
            ["app-jwt", "installation-token", "expired-token", "app-jwt", "installation-token"],
        )
        tokens = self.call("GET", "/_fake/tokens")[2]["tokens"]
        self.assertEqual([t["expired"] for t in tokens], [True, False])

    def test_scoped_tokens(self) -> None:
        scoped = self.token(body={"repositories": ["orders-api"]})
        self.assertEqual(self.post_status(bearer(scoped), state="success")[0], 201)
        self.assertEqual(
            self.post_status(bearer(scoped), "acme/billing-api", state="success")[0], 404
        )
        status, _, created = self.call(
            "POST",
            "/app/installations/42/access_tokens",
            {"repositories": ["billing-api"]},
            bearer(mint_jwt()),
        )
        self.assertEqual(status, 201)
        self.assertEqual([r["full_name"] for r in created["repositories"]], ["acme/billing-api"])
        for repo in created["repositories"]:
            self.assert_repository(repo)
        for body in (
            {"repositories": ["web"]},
            {"permissions": {"contents": "write"}},
            {"permissions": {"statuses": "admin"}},
            {"repository_ids": [1]},
        ):
            status, _, err = self.call(
                "POST", "/app/installations/42/access_tokens", body, bearer(mint_jwt())
            )
            self.assertEqual(status, 422, body)
            self.assert_error(err, 422)
        read_only = self.token(body={"permissions": {"statuses": "read"}})
        status, _, err = self.post_status(bearer(read_only), state="success")
        self.assertEqual(status, 403)
        self.assert_error(err, 403, "Resource not accessible by integration")
        status, _, _ = self.call(
            "GET", f"/repos/acme/orders-api/commits/{SHA}/statuses", auth=bearer(read_only)
        )
        self.assertEqual(status, 200)

    def test_installation_repositories_and_revoke(self) -> None:
        token = self.token()
        status, _, body = self.call("GET", "/installation/repositories", auth=bearer(token))
        self.assertEqual(status, 200)
        self.assertEqual(body["total_count"], 2)
        self.assertEqual(
            sorted(r["full_name"] for r in body["repositories"]),
            ["acme/billing-api", "acme/orders-api"],
        )
        for repo in body["repositories"]:
            self.assert_repository(repo)
        self.assertEqual(self.call("DELETE", "/installation/token", auth=bearer(token))[0], 204)
        self.assertEqual(self.post_status(bearer(token), state="success")[0], 401)

    def test_static_token(self) -> None:
        for repo in ("acme/orders-api", "anyone/anything"):
            status, _, body = self.post_status(bearer(STATIC), repo, state="success")
            self.assertEqual(status, 201, body)
            self.assertEqual(body["creator"]["type"], "User")
        self.assertEqual(self.post_status(bearer("ghp_unknown"), state="success")[0], 401)
        status, _, body = self.post_status("", state="success")
        self.assertEqual(status, 401)
        self.assert_error(body, 401, "Requires authentication")
        log = self.requests_log()
        self.assertEqual(
            [e["auth"] for e in log], ["static-token", "static-token", "invalid", "none"]
        )
        self.assertEqual(log[0]["installationId"], None)


class StatusTest(ServerTest):
    def setUp(self) -> None:
        super().setUp()
        self.auth = bearer(self.token())

    def test_create_all_states_and_validation(self) -> None:
        for state in ("error", "failure", "pending", "success"):
            status, headers, body = self.post_status(
                self.auth,
                state=state,
                context="ci/test",
                description="d",
                target_url="https://ci/1",
            )
            self.assertEqual(status, 201, body)
            self.assert_status(body, creator=True)
            self.assertEqual(
                (body["state"], body["context"], body["description"], body["target_url"]),
                (state, "ci/test", "d", "https://ci/1"),
            )
            self.assertEqual(headers["location"], body["url"])
        status, _, body = self.post_status(self.auth, state="success")
        self.assertEqual(
            (status, body["context"], body["description"], body["target_url"]),
            (201, "default", None, None),
        )
        status, _, body = self.post_status(self.auth, state="success", description="x" * 140)
        self.assertEqual(status, 201)
        status, _, body = self.post_status(self.auth, state="success", description="x" * 141)
        self.assertEqual(status, 422)
        self.assert_error(body, 422, "Validation Failed")
        self.assertEqual(body["errors"][0]["field"], "description")
        for bad in ({"state": "ok"}, {"state": None}, {}, {"state": "success", "context": 5}):
            status, _, body = self.call(
                "POST", f"/repos/acme/orders-api/statuses/{SHA}", bad, self.auth
            )
            self.assertEqual(status, 422, bad)
            self.assert_error(body, 422)
        status, _, body = self.call(
            "POST", f"/repos/acme/orders-api/statuses/{SHA}", raw=b"{nope", auth=self.auth
        )
        self.assertEqual(status, 400)
        self.assert_error(body, 400, "Problems parsing JSON")
        status, _, body = self.post_status(self.auth, sha="main", state="success")
        self.assertEqual(status, 422)
        self.assert_error(body, 422, "No commit found for SHA: main")
        # Upper-case SHAs are the same commit.
        self.assertEqual(self.post_status(self.auth, sha=SHA.upper(), state="success")[0], 201)

        recorded = self.call("GET", f"/_fake/statuses?repo=acme/orders-api&sha={SHA}")[2][
            "statuses"
        ]
        self.assertEqual(len(recorded), 7)
        self.assertEqual(
            [s["state"] for s in recorded[:4]], ["error", "failure", "pending", "success"]
        )
        self.assertEqual(recorded[0]["auth"], "installation-token")
        self.assertEqual(recorded[0]["installationId"], 42)
        self.assertEqual(self.call("GET", "/_fake/statuses?sha=" + SHA2)[2]["statuses"], [])
        self.assertEqual(len(self.call("GET", "/_fake/statuses")[2]["statuses"]), 7)

    def test_list_newest_first_with_paging(self) -> None:
        ids = []
        for n in range(5):
            ids.append(self.post_status(self.auth, state="pending", context=f"c{n % 2}")[2]["id"])
        self.post_status(self.auth, sha=SHA2, state="success")
        path = f"/repos/acme/orders-api/commits/{SHA}/statuses"
        status, headers, body = self.call("GET", path, auth=self.auth)
        self.assertEqual(status, 200)
        self.assertEqual([s["id"] for s in body], ids[::-1])
        self.assertNotIn("link", headers)
        for item in body:
            self.assert_status(item, creator=True)

        status, headers, page1 = self.call("GET", path + "?per_page=2", auth=self.auth)
        self.assertEqual([s["id"] for s in page1], [ids[4], ids[3]])
        links = dict(
            (rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', headers["link"])
        )
        self.assertEqual(sorted(links), ["last", "next"])
        self.assertIn("page=2", links["next"])
        self.assertIn("page=3", links["last"])
        self.assertIn("/repositories/", links["next"])
        # The Link URL works as is (GitHub's /repositories/{id}/... form).
        status, headers, page2 = self.call("GET", links["next"], auth=self.auth)
        self.assertEqual(status, 200)
        self.assertEqual([s["id"] for s in page2], [ids[2], ids[1]])
        rels = re.findall(r'rel="(\w+)"', headers["link"])
        self.assertEqual(rels, ["prev", "next", "last", "first"])
        status, headers, page3 = self.call("GET", path + "?per_page=2&page=3", auth=self.auth)
        self.assertEqual([s["id"] for s in page3], [ids[0]])
        self.assertEqual(re.findall(r'rel="(\w+)"', headers["link"]), ["prev", "first"])
        status, _, beyond = self.call("GET", path + "?per_page=2&page=9", auth=self.auth)
        self.assertEqual((status, beyond), (200, []))
        # per_page is capped at 100, and the legacy route lists the same.
        status, _, body = self.call("GET", path + "?per_page=1000", auth=self.auth)
        self.assertEqual(len(body), 5)
        status, _, legacy = self.call(
            "GET", f"/repos/acme/orders-api/statuses/{SHA}", auth=self.auth
        )
        self.assertEqual([s["id"] for s in legacy], ids[::-1])
        # Unknown refs have no statuses.
        self.assertEqual(
            self.call("GET", "/repos/acme/orders-api/commits/heads/main/statuses", auth=self.auth)[
                2
            ],
            [],
        )

    def test_combined_status(self) -> None:
        path = f"/repos/acme/orders-api/commits/{SHA}/status"

        def combined() -> dict[str, Any]:
            status, _, body = self.call("GET", path, auth=self.auth)
            self.assertEqual(status, 200, body)
            self.assertIsInstance(body["sha"], str)  # models::CombinedStatus
            self.assertIsInstance(body["total_count"], int)
            self.assert_repository(body["repository"])
            self.assertTrue(is_abs_url(body["commit_url"]) and is_abs_url(body["url"]))
            for item in body["statuses"]:
                self.assert_status(item, creator=False)
            return body

        body = combined()
        self.assertEqual((body["state"], body["total_count"], body["statuses"]), ("pending", 0, []))
        self.post_status(self.auth, state="success", context="ci/build")
        self.assertEqual(combined()["state"], "success")
        self.post_status(self.auth, state="pending", context="ci/deploy")
        self.assertEqual(combined()["state"], "pending")
        self.post_status(self.auth, state="success", context="ci/deploy")
        body = combined()
        self.assertEqual((body["state"], body["total_count"]), ("success", 2))
        self.assertEqual([s["context"] for s in body["statuses"]], ["ci/build", "ci/deploy"])
        self.post_status(self.auth, state="error", context="ci/lint")
        self.assertEqual(combined()["state"], "failure")
        self.post_status(self.auth, state="success", context="ci/lint")
        self.post_status(self.auth, state="failure", context="ci/build")
        self.post_status(self.auth, state="pending", context="ci/deploy")
        body = combined()
        self.assertEqual((body["state"], body["total_count"]), ("failure", 3))
        self.assertEqual(body["sha"], SHA)
        status, headers, page = self.call("GET", path + "?per_page=2&page=2", auth=self.auth)
        self.assertEqual((len(page["statuses"]), page["total_count"]), (1, 3))
        self.assertIn('rel="prev"', headers["link"])


class RateLimitTest(ServerTest):
    def setUp(self) -> None:
        super().setUp()
        self.auth = bearer(self.token())

    def test_headers_on_every_response(self) -> None:
        responses = [
            self.post_status(self.auth, state="success"),
            self.call("GET", f"/repos/acme/orders-api/commits/{SHA}/statuses", auth=self.auth),
            self.call("GET", "/repos/acme/orders-api/nothing", auth=self.auth),
            self.post_status(bearer("bad"), state="success"),
            self.call("GET", "/app", auth=bearer(mint_jwt())),
        ]
        for status, headers, _ in responses:
            for name in RATE_HEADERS:
                self.assertIn(name, headers, status)
            self.assertEqual(headers["x-ratelimit-resource"], "core")
        used = [int(r[1]["x-ratelimit-used"]) for r in responses[:2]]
        self.assertEqual(used[1], used[0] + 1)
        self.assertEqual(responses[0][1]["x-ratelimit-limit"], "5000")
        self.assertEqual(int(responses[0][1]["x-ratelimit-remaining"]), 5000 - used[0])
        self.assertEqual(responses[3][1]["x-ratelimit-limit"], "60")
        status, _, limits = self.call("GET", "/rate_limit", auth=self.auth)
        self.assertEqual(status, 200)
        self.assertEqual(limits["rate"]["limit"], 5000)
        self.assertEqual(set(limits["resources"]["core"]), {"limit", "used", "remaining", "reset"})
        self.assertIn("search", limits["resources"])

    def test_secondary_injection(self) -> None:
        status, _, body = self.call(
            "POST", "/_fake/rate-limit", {"kind": "secondary", "count": 2, "retryAfter": 2}
        )
        self.assertEqual(status, 200, body)
        # Reads are not content creation.
        self.assertEqual(
            self.call("GET", f"/repos/acme/orders-api/commits/{SHA}/statuses", auth=self.auth)[0],
            200,
        )
        for _ in range(2):
            status, headers, body = self.post_status(self.auth, state="success")
            self.assertEqual(status, 403)
            self.assertEqual(headers["retry-after"], "2")
            self.assertNotEqual(headers["x-ratelimit-remaining"], "0")
            self.assert_error(body, 403)
            self.assertIn("secondary rate limit", body["message"])
        self.assertEqual(self.post_status(self.auth, state="success")[0], 201)
        self.assertEqual(len(self.call("GET", "/_fake/statuses")[2]["statuses"]), 1)
        log = self.requests_log()
        self.assertEqual(
            [(e["status"], e["rateLimited"], e["retryAfter"]) for e in log[-4:]],
            [(200, None, None), (403, "secondary", 2), (403, "secondary", 2), (201, None, None)],
        )
        self.call(
            "POST", "/_fake/rate-limit", {"kind": "secondary", "status": 429, "retryAfter": 1}
        )
        status, headers, _ = self.post_status(self.auth, state="success")
        self.assertEqual((status, headers["retry-after"]), (429, "1"))

    def test_primary_injection(self) -> None:
        self.call("POST", "/_fake/rate-limit", {"kind": "primary", "count": 2, "resetIn": 30})
        start = time.time()
        for call in (
            lambda: self.post_status(self.auth, state="success"),
            lambda: self.call(
                "GET", f"/repos/acme/orders-api/commits/{SHA}/status", auth=self.auth
            ),
        ):
            status, headers, body = call()
            self.assertEqual(status, 403)
            self.assertEqual(headers["x-ratelimit-remaining"], "0")
            self.assertAlmostEqual(int(headers["x-ratelimit-reset"]), start + 30, delta=2)
            self.assertNotIn("retry-after", headers)
            self.assertIn("API rate limit exceeded for installation ID 42", body["message"])
        # App endpoints are not repository requests.
        self.call(
            "POST",
            "/_fake/rate-limit",
            {"kind": "primary", "count": 1, "status": 429, "resetIn": 5},
        )
        self.assertEqual(self.call("GET", "/app", auth=bearer(mint_jwt()))[0], 200)
        status, headers, _ = self.post_status(self.auth, state="success")
        self.assertEqual((status, headers["x-ratelimit-remaining"]), (429, "0"))
        self.assertEqual(self.post_status(self.auth, state="success")[0], 201)
        self.assertEqual(len(self.call("GET", "/_fake/statuses")[2]["statuses"]), 1)
        self.assertEqual(
            [(e["rateLimited"], e["retryAfter"]) for e in self.requests_log()[-5:]],
            [("primary", None), ("primary", None), (None, None), ("primary", None), (None, None)],
        )

    def test_injection_for_one_repo_and_bad_requests(self) -> None:
        self.call("POST", "/_fake/rate-limit", {"kind": "secondary", "repo": "acme/billing-api"})
        self.assertEqual(self.post_status(self.auth, state="success")[0], 201)
        self.assertEqual(self.post_status(self.auth, "acme/billing-api", state="success")[0], 403)
        self.assertEqual(self.call("GET", "/_fake/rate-limit")[2]["injections"], [])
        for body in (
            {"kind": "tertiary"},
            {"kind": "primary", "status": 500},
            {"kind": "primary", "count": -1},
        ):
            self.assertEqual(self.call("POST", "/_fake/rate-limit", body)[0], 400)


class LogAndResetTest(ServerTest):
    def test_auth_kinds_and_no_secrets_in_log(self) -> None:
        jwt = mint_jwt()
        token = self.token()  # app-jwt
        self.post_status(bearer(token), state="success")  # installation-token
        self.post_status(bearer(STATIC), state="success")  # static-token
        self.post_status(None, state="success")  # none
        self.post_status(bearer("ghs_" + "x" * 36), state="success")  # invalid
        self.call("GET", "/app", auth=bearer(jwt))
        self.call("POST", "/_fake/expire-tokens")
        self.post_status(bearer(token), state="success")  # expired-token
        log = self.requests_log()
        self.assertEqual(
            [e["auth"] for e in log],
            [
                "app-jwt",
                "installation-token",
                "static-token",
                "none",
                "invalid",
                "app-jwt",
                "expired-token",
            ],
        )
        for entry in log:
            self.assertLessEqual(
                {"method", "path", "auth", "installationId", "status", "time"}, set(entry)
            )
        text = json.dumps(log)
        for secret in (token, STATIC, jwt, jwt.split(".")[2]):
            self.assertNotIn(secret, text)
        statuses = json.dumps(self.call("GET", "/_fake/statuses")[2])
        self.assertNotIn(token, statuses)
        self.assertNotIn(STATIC, statuses)

    def test_reset(self) -> None:
        token = self.token()
        self.post_status(bearer(token), state="success")
        self.call("POST", "/_fake/rate-limit", {"kind": "secondary", "count": 5})
        self.call("POST", "/_fake/installations", {"id": 90, "repositories": ["hooli/app"]})
        status, _, body = self.call("POST", "/_fake/reset")
        self.assertEqual((status, body), (200, {"ok": True}))
        self.assertEqual(self.requests_log(), [])
        self.assertEqual(self.call("GET", "/_fake/statuses")[2]["statuses"], [])
        self.assertEqual(self.call("GET", "/_fake/tokens")[2]["tokens"], [])
        self.assertEqual(self.call("GET", "/_fake/rate-limit")[2]["injections"], [])
        installations = self.call("GET", "/_fake/installations")[2]["installations"]
        self.assertEqual([i["id"] for i in installations], [42, 43])
        # The old token is gone; the App key and CLI installations remain.
        status, _, _ = self.post_status(bearer(token), state="success")
        self.assertEqual(status, 401)
        self.assertEqual(self.requests_log()[0]["auth"], "invalid")
        new = self.token()
        self.assertEqual(self.post_status(bearer(new), state="success")[0], 201)
        self.assertEqual(self.call("GET", "/_fake/health")[2]["ok"], True)

    def test_unknown_route(self) -> None:
        status, headers, body = self.call(
            "GET", "/repos/acme/orders-api/pulls", auth=bearer(STATIC)
        )
        self.assertEqual(status, 404)
        self.assert_error(body, 404, "Not Found")
        self.assertIn("x-ratelimit-limit", headers)
        self.assertEqual(self.call("GET", "/_fake/nothing")[0], 404)


class ShortTtlServerTest(ServerTest):
    """A second process: one-second tokens, three statuses per sha and context, --verbose."""

    extra = ("--token-ttl", "1", "--status-limit", "3", "--verbose")

    def test_token_expires_after_ttl(self) -> None:
        status, _, created = self.call(
            "POST", "/app/installations/42/access_tokens", {}, bearer(mint_jwt())
        )
        token = created["token"]
        self.assertEqual(self.post_status(bearer(token), state="pending")[0], 201)
        time.sleep(1.1)
        status, _, body = self.post_status(bearer(token), state="success")
        self.assertEqual(status, 401)
        self.assertEqual(self.requests_log()[-1]["auth"], "expired-token")

    def test_status_limit_per_sha_and_context(self) -> None:
        auth = bearer(STATIC)
        for _ in range(3):
            self.assertEqual(self.post_status(auth, state="pending", context="ci")[0], 201)
        status, _, body = self.post_status(auth, state="success", context="ci")
        self.assertEqual(status, 422)
        self.assertIn("maximum number of statuses", body["errors"][0]["message"])
        self.assertEqual(self.post_status(auth, state="success", context="other")[0], 201)
        self.assertEqual(self.post_status(auth, sha=SHA2, state="success", context="ci")[0], 201)

    def test_zz_no_secret_on_stdout_or_stderr(self) -> None:
        token = self.token()
        jwt = mint_jwt()
        self.call("GET", "/app", auth=bearer(jwt))
        self.post_status(bearer(token), state="success")
        self.post_status(bearer(STATIC), state="success")
        self.post_status(bearer("not-a-token"), state="success")
        out, err = self.server.stop()
        type(self).server = Server(*self.extra)  # tearDownClass stops this one
        self.assertIn("BPL_GITHUB_LISTENING", out)
        self.assertIn("/statuses/", err)  # --verbose logs request lines ...
        for secret in (token, STATIC, jwt, "not-a-token"):
            self.assertNotIn(secret, out + err)  # ... never credentials


class InProcessTest(Shapes):
    """Many-request cases through werkzeug's test client (no sockets)."""

    def client(self, **config: Any):
        from werkzeug.test import Client

        settings: dict[str, Any] = {
            "app_id": APP_ID,
            "public_key": APP_KEY.public_key(),
            "static_tokens": [(STATIC, None), ("scoped-pat", ["acme/orders-api"])],
        }
        settings.update(config)
        return Client(GitHubFake(Config(**settings)))

    def test_default_limit_of_1000_statuses(self) -> None:
        client = self.client()
        headers = {"Authorization": bearer(STATIC)}
        for n in range(1000):
            resp = client.post(
                f"/repos/acme/orders-api/statuses/{SHA}",
                json={"state": "pending", "context": "ci"},
                headers=headers,
            )
            self.assertEqual(resp.status_code, 201, n)
        resp = client.post(
            f"/repos/acme/orders-api/statuses/{SHA}",
            json={"state": "success", "context": "ci"},
            headers=headers,
        )
        self.assertEqual(resp.status_code, 422)
        resp = client.get(
            f"/repos/acme/orders-api/commits/{SHA}/statuses?per_page=100&page=10", headers=headers
        )
        self.assertEqual(len(resp.get_json()), 100)
        self.assertEqual(re.findall(r'rel="(\w+)"', resp.headers["Link"]), ["prev", "first"])

    def test_natural_primary_limit(self) -> None:
        client = self.client(rate_limit=3)
        headers = {"Authorization": bearer(STATIC)}
        path = f"/repos/acme/orders-api/commits/{SHA}/statuses"
        remaining = [
            client.get(path, headers=headers).headers["x-ratelimit-remaining"] for _ in range(3)
        ]
        self.assertEqual(remaining, ["2", "1", "0"])
        resp = client.get(path, headers=headers)
        self.assertEqual(resp.status_code, 403)
        self.assertEqual(resp.headers["x-ratelimit-remaining"], "0")
        self.assertIn("API rate limit exceeded", resp.get_json()["message"])

    def test_scoped_static_token(self) -> None:
        client = self.client()
        headers = {"Authorization": bearer("scoped-pat")}
        ok = client.post(
            f"/repos/acme/orders-api/statuses/{SHA}", json={"state": "success"}, headers=headers
        )
        self.assertEqual(ok.status_code, 201)
        other = client.post(
            f"/repos/acme/other/statuses/{SHA}", json={"state": "success"}, headers=headers
        )
        self.assertEqual(other.status_code, 404)

    def test_without_app_every_jwt_is_refused(self) -> None:
        client = self.client(app_id=None, public_key=None)
        resp = client.get("/app", headers={"Authorization": bearer(mint_jwt())})
        self.assertEqual(resp.status_code, 401)
        self.assert_error(resp.get_json(), 401, jwt_rs256.UNDECODABLE)

    def test_client_id_as_iss(self) -> None:
        client = self.client(client_id="Iv23liFakeClient")
        resp = client.get(
            "/app", headers={"Authorization": bearer(mint_jwt(iss="Iv23liFakeClient"))}
        )
        self.assertEqual(resp.status_code, 200)

    def test_refs_and_relative_links(self) -> None:
        client = self.client(relative_links=True)
        headers = {"Authorization": bearer(STATIC)}
        for context in ("a", "b", "c"):
            resp = client.post(
                f"/repos/acme/orders-api/statuses/{SHA}",
                json={"state": "success", "context": context},
                headers=headers,
            )
            self.assertEqual(resp.status_code, 201)
        resp = client.post(
            "/_fake/refs", json={"repo": "acme/orders-api", "branch": "main", "sha": SHA}
        )
        self.assertEqual(resp.status_code, 200)
        client.post("/_fake/refs", json={"repo": "acme/orders-api", "tag": "v1", "sha": SHA})
        for ref in ("main", "heads/main", "refs/heads/main", "tags/v1", "v1"):
            resp = client.get(f"/repos/acme/orders-api/commits/{ref}/status", headers=headers)
            body = resp.get_json()
            self.assertEqual(
                (body["state"], body["sha"], body["total_count"]), ("success", SHA, 3), ref
            )
        resp = client.get("/repos/acme/orders-api/commits/heads/other/status", headers=headers)
        self.assertEqual((resp.get_json()["total_count"], resp.get_json()["state"]), (0, "pending"))
        resp = client.get(
            "/repos/acme/orders-api/commits/main/statuses?per_page=2", headers=headers
        )
        self.assertEqual(len(resp.get_json()), 2)
        next_link = re.search(r'<([^>]+)>; rel="next"', resp.headers["Link"]).group(1)
        self.assertTrue(next_link.startswith("/repositories/"), next_link)
        resp = client.get(next_link, headers=headers)
        self.assertEqual([s["context"] for s in resp.get_json()], ["a"])
        bad = {"repo": "acme/orders-api", "branch": "main", "tag": "v1", "sha": SHA}
        self.assertEqual(client.post("/_fake/refs", json=bad).status_code, 400)


class CliTest(unittest.TestCase):
    def test_bad_arguments_exit_2(self) -> None:
        script = os.path.join(HERE, "run_github.py")
        for args in (
            ["--installation", "x=acme/a"],
            ["--installation", "1=acme/a,other/b"],
            ["--app-id", "1"],
            ["--app-id", "1", "--app-public-key", "/nonexistent.pem"],
            ["--static-token", "=acme/a"],
            ["--installation", "1=acme/a", "--installation", "1=acme/b"],
            ["--installation", "1=acme/a", "--installation", "2=acme/a"],
        ):
            proc = subprocess.run(
                [sys.executable, script, *args], capture_output=True, text=True, timeout=20
            )
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertNotIn("LISTENING", proc.stdout)


if __name__ == "__main__":
    unittest.main()
