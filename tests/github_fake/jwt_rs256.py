"""Checks a GitHub App JWT the way GitHub documents it.

"Generating a JSON Web Token (JWT) for a GitHub App"
(https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app):
the JWT is signed with RS256 by the App's private key and carries

* ``iat``: issued at; GitHub recommends 60 s in the past against clock drift,
* ``exp``: no more than 10 minutes into the future,
* ``iss``: the App's id (or, newer, its client id).

GitHub's own example sets ``iat = now - 60`` and ``exp = now + 600``, so ``exp`` may lie
up to 660 s after ``iat``; octocrab 0.54.9 (``auth::create_jwt``) sends ``iat = now - 60``,
``exp = now + 540`` and ``iss`` as a JSON integer.

Only ``cryptography`` is used: PKCS#1 v1.5 with SHA-256 over ``header.payload``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The messages GitHub answers with (401) for a bad App JWT.
UNDECODABLE = "A JSON web token could not be decoded"
EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future "
    "time at which the assertion expires"
)
TOO_FAR = "'Expiration time' claim ('exp') is too far in the future"
BAD_IAT = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the "
    "assertion was issued"
)

# exp may be at most this far ahead of the server's clock ...
MAX_EXP_AHEAD = 600
# ... and at most this far after iat (10 minutes plus the recommended 60 s backdating).
MAX_EXP_AFTER_IAT = 600 + 60
# iat in the future is refused; 1 s absorbs integer truncation of the client's clock.
IAT_FUTURE_LEEWAY = 1

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass
class JwtCheck:
    ok: bool
    message: str = ""
    # Set as soon as the token parses as a JWT, even if it is refused.
    looks_like_jwt: bool = False


def looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3 or not all(_B64URL.match(p) for p in parts):
        return False
    try:
        header = json.loads(_b64url_decode(parts[0]))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and "alg" in header


def load_public_key(text_or_path: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM text or a PEM file; a private key yields its public half."""
    data = text_or_path
    if "-----BEGIN" not in text_or_path:
        with open(text_or_path, encoding="ascii") as f:
            data = f.read()
    raw = data.encode("ascii")
    if b"PRIVATE KEY" in raw:
        key: Any = serialization.load_pem_private_key(raw, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(raw)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the App key must be an RSA key")
    return key


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _iss_matches(iss: Any, app_id: int, client_id: str | None) -> bool:
    if _is_int(iss):
        return iss == app_id
    if isinstance(iss, str):
        if iss.isdigit():
            return int(iss) == app_id
        return client_id is not None and iss == client_id
    return False


def verify(
    token: str,
    public_key: rsa.RSAPublicKey | None,
    app_id: int | None,
    client_id: str | None = None,
    now: float | None = None,
) -> JwtCheck:
    """Whether ``token`` is a JWT GitHub would accept for the App (``app_id``, ``public_key``)."""
    now = time.time() if now is None else now
    if not looks_like_jwt(token):
        return JwtCheck(False, UNDECODABLE)
    head_b64, payload_b64, sig_b64 = token.split(".")
    try:
        header = json.loads(_b64url_decode(head_b64))
        claims = json.loads(_b64url_decode(payload_b64))
        signature = _b64url_decode(sig_b64)
    except (ValueError, binascii.Error):
        return JwtCheck(False, UNDECODABLE, True)
    if public_key is None or app_id is None:
        return JwtCheck(False, UNDECODABLE, True)
    if header.get("alg") != "RS256" or not isinstance(claims, dict):
        return JwtCheck(False, UNDECODABLE, True)
    # GitHub finds the public key through iss: a wrong iss means no key verifies it.
    if not _iss_matches(claims.get("iss"), app_id, client_id):
        return JwtCheck(False, UNDECODABLE, True)
    try:
        public_key.verify(
            signature,
            f"{head_b64}.{payload_b64}".encode("ascii"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return JwtCheck(False, UNDECODABLE, True)
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _is_int(iat) or iat > now + IAT_FUTURE_LEEWAY:
        return JwtCheck(False, BAD_IAT, True)
    if not _is_int(exp) or exp <= now:
        return JwtCheck(False, EXPIRED, True)
    if exp > now + MAX_EXP_AHEAD or exp - iat > MAX_EXP_AFTER_IAT:
        return JwtCheck(False, TOO_FAR, True)
    return JwtCheck(True, "", True)
