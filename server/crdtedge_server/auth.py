"""Signed-token auth (JWT, HS256 or EdDSA) for relay handshakes.

Claims: `room` names the room exactly, or a prefix when it ends in `*` ("site-7/*");
`perm` is `rw` or `ro`; `exp` (required) is the expiry. Browsers cannot set headers on a
websocket, so the token may come as `?token=` as well as `Authorization: Bearer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from websockets.http11 import Request

from crdtedge.relay import Grant, Rejected


@dataclass(frozen=True)
class TokenAuth:
    """An Authorizer (see crdtedge.relay) checking JWTs with one key per algorithm."""

    hs256_secret: bytes | None = None
    eddsa_public_key: bytes | None = None  # PEM
    leeway_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.hs256_secret is None and self.eddsa_public_key is None:
            raise ValueError("token auth needs an HS256 secret or an EdDSA public key")

    def __call__(self, request: Request, room: str) -> Grant:
        token = _token_of(request)
        if token is None:
            raise Rejected(HTTPStatus.UNAUTHORIZED, "missing token (?token= or Bearer header)")
        claims = self._verify(token)
        pattern = claims.get("room")
        if not isinstance(pattern, str) or not _room_matches(pattern, room):
            raise Rejected(HTTPStatus.FORBIDDEN, "token does not grant this room")
        perm = claims.get("perm")
        if perm not in ("rw", "ro"):
            raise Rejected(HTTPStatus.FORBIDDEN, "token has no valid perm claim (rw or ro)")
        subject = claims.get("sub")
        return Grant(readonly=perm == "ro", subject=subject if isinstance(subject, str) else None)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm == "HS256" and self.hs256_secret is not None:
                key: Any = self.hs256_secret
            elif algorithm == "EdDSA" and self.eddsa_public_key is not None:
                key = self.eddsa_public_key
            else:
                raise Rejected(HTTPStatus.UNAUTHORIZED, f"token algorithm {algorithm!r} refused")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                options={"require": ["exp"]},
                leeway=self.leeway_seconds,
            )
        except jwt.ExpiredSignatureError:
            raise Rejected(HTTPStatus.UNAUTHORIZED, "token expired") from None
        except jwt.InvalidTokenError as exc:
            raise Rejected(HTTPStatus.UNAUTHORIZED, f"invalid token: {exc}") from None
        return claims


def _token_of(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    tokens = parse_qs(urlsplit(request.path).query).get("token")
    return tokens[0] if tokens else None


def _room_matches(pattern: str, room: str) -> bool:
    if pattern.endswith("*"):
        return room.startswith(pattern[:-1])
    return room == pattern
