"""Accounts and access tokens.

Passwords are stored as scrypt hashes with a random salt (hashed off the event loop); tokens are
32 random bytes shown once and stored as their SHA-256, so a leaked database holds no usable token.

Usernames are NFKC-normalised and case-folded before anything else (``Admin``, ``admin`` and
fullwidth ``Admin`` (U+FF21...) are one account), then must be 3-64 of ``a-z 0-9 _ . -``. Passwords are
NFKC-normalised before hashing (the same password typed on another keyboard still matches) and
must have at least :data:`MIN_PASSWORD_CHARS` characters that are neither spaces nor invisible
(``"        "`` or eight zero-width spaces are not passwords), must not be one of the common
passwords shipped in ``domain/data/common-passwords.txt``, and must not be the username.
Accounts made before these rules (a mixed-case name, a password hashed unnormalised) still sign in.

Authentication remembers a valid token for ``token_check_s`` (the same period after which open
streams check their tokens again), so most requests cost no database round trip:

- a token revoked through this process stops working at once;
- a token revoked through another process stops working within ``token_check_s``;
- an expired token stops working at its expiry (the remembered expiry is checked every time);
- unknown tokens are never remembered (each costs a look-up, as before), and at most
  :data:`REMEMBERED_TOKENS` tokens are remembered (the least recently used are forgotten).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anyio.to_thread

from domain.db import Database, is_unique_violation
from domain.errors import Conflict, Forbidden, InvalidField, InvalidFields, Unauthorized
from domain.tables import AccessToken, User, UserSettings
from domain.values import iso, now_ms

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# A hash to check against when the user does not exist, so both failures take the same time.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


MIN_PASSWORD_CHARS = 8
REMEMBERED_TOKENS = 20_000
_USERNAME = re.compile(r"^[a-z0-9_.-]{3,64}$")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


def normalize_username(username: str) -> str:
    """The name an account is known by: NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", username).casefold()


def normalize_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_new_account(username: str, password: str) -> None:
    """Raise :class:`InvalidFields` naming each rule a new account's (normalised) name or password breaks."""
    errors = []
    if not _USERNAME.fullmatch(username):
        errors.append(InvalidField("username", "must be 3-64 letters, digits, _ . - (compared case-insensitively)"))
    visible = sum(1 for char in password if unicodedata.category(char) not in _INVISIBLE)
    if visible < MIN_PASSWORD_CHARS:
        errors.append(
            InvalidField("password", f"must have at least {MIN_PASSWORD_CHARS} characters that are not spaces")
        )
    elif password.casefold() in common_passwords():
        errors.append(InvalidField("password", "is one of the most common passwords: choose another"))
    elif password.casefold() == username or password.strip().casefold() == username:
        errors.append(InvalidField("password", "must not be the username"))
    if errors:
        raise InvalidFields(errors)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    username: str
    token_hash: str
    created_at: int = 0  # the user's, in ms


@dataclass(frozen=True, slots=True)
class _Remembered:
    principal: Principal
    expires_at: int  # the token's expiry, ms
    checked_at: float  # time.monotonic() of the database look-up


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(
        [
            "scrypt",
            str(SCRYPT_N),
            str(SCRYPT_R),
            str(SCRYPT_P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserService:
    def __init__(self, db: Database, *, allow_signup: bool, token_ttl_s: int, token_check_s: float = 30.0) -> None:
        self.db = db
        self.allow_signup = allow_signup
        self.token_ttl_s = token_ttl_s
        self.token_check_s = token_check_s
        self._remembered: OrderedDict[str, _Remembered] = OrderedDict()

    async def register(self, username: str, password: str) -> dict[str, Any]:
        if not self.allow_signup:
            raise Forbidden("sign-up is switched off on this server")
        username, password = normalize_username(username), normalize_password(password)
        check_new_account(username, password)
        password_hash = await anyio.to_thread.run_sync(hash_password, password)
        return await self.create_user(username, password_hash)

    async def create_user(self, username: str, password_hash: str) -> dict[str, Any]:
        """Insert the user and their default settings; 409 if the name is taken (by an account of
        any case: older accounts may have upper-case letters)."""
        try:
            async with self.db.write():
                taken = await User.raw("SELECT 1 FROM users WHERE lower(username) = {} LIMIT 1", username.lower())
                if taken:
                    raise Conflict(f"username {username!r} is taken")
                user = User(username=username, password_hash=password_hash, created_at=now_ms())
                rows = await User.insert(user).returning(User.id)
                user_id = rows[0]["id"]
                await UserSettings.insert(UserSettings(user_id=user_id, updated_at=now_ms()))
        except Exception as exc:
            if is_unique_violation(exc):  # a concurrent sign-up with the same name won the race
                raise Conflict(f"username {username!r} is taken") from None
            raise
        return {"id": user_id, "username": username}

    async def issue_token(self, username: str, password: str) -> dict[str, Any]:
        folded = normalize_username(username)
        names = [folded] if folded == username else [folded, username]  # an older, mixed-case account
        row = await User.select(User.id, User.password_hash).where(User.username.is_in(names)).first()
        stored = row["password_hash"] if row else _DUMMY_HASH
        normalized = normalize_password(password)
        valid = await anyio.to_thread.run_sync(verify_password, normalized, stored)
        if not valid and row is not None and normalized != password:  # hashed before passwords were normalised
            valid = await anyio.to_thread.run_sync(verify_password, password, stored)
        if row is None or not valid:
            raise Unauthorized("wrong username or password")
        token = secrets.token_urlsafe(32)
        created = now_ms()
        await AccessToken.insert(
            AccessToken(
                user_id=row["id"],
                token_hash=hash_token(token),
                created_at=created,
                expires_at=created + self.token_ttl_s * 1000,
            )
        )
        return {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl_s}

    async def authenticate(self, token: str) -> Principal:
        token_hash = hash_token(token)
        remembered = self._remembered.get(token_hash)
        if remembered is not None:
            if remembered.expires_at > now_ms() and time.monotonic() - remembered.checked_at < self.token_check_s:
                self._remembered.move_to_end(token_hash)
                return remembered.principal
            del self._remembered[token_hash]
        row = await self.db.fetch_one(
            "SELECT t.user_id, t.expires_at, u.username, u.created_at FROM tokens t"
            " JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.expires_at > ?",
            token_hash,
            now_ms(),
        )
        if row is None:
            raise Unauthorized("invalid, expired or revoked token")
        principal = Principal(
            user_id=row["user_id"], username=row["username"], token_hash=token_hash, created_at=row["created_at"]
        )
        self._remembered[token_hash] = _Remembered(principal, row["expires_at"], time.monotonic())
        if len(self._remembered) > REMEMBERED_TOKENS:
            self._remembered.popitem(last=False)
        return principal

    async def valid_tokens(self, tokens: Collection[str]) -> set[str]:
        """Those of ``tokens`` that are still valid (neither revoked nor expired)."""
        by_hash = {hash_token(token): token for token in tokens}
        hashes = list(by_hash)
        valid: set[str] = set()
        for start in range(0, len(hashes), 1000):
            rows = await AccessToken.select(AccessToken.token_hash).where(
                AccessToken.token_hash.is_in(hashes[start : start + 1000]) & (AccessToken.expires_at > now_ms())
            )
            valid.update(by_hash[row["token_hash"]] for row in rows)
        return valid

    async def revoke(self, principal: Principal) -> None:
        self._remembered.pop(principal.token_hash, None)
        await AccessToken.delete().where(AccessToken.token_hash == principal.token_hash)
        self._remembered.pop(principal.token_hash, None)  # an authentication that raced the delete

    @staticmethod
    def me(principal: Principal) -> dict[str, Any]:
        """The signed-in user, as authentication found them (no database round trip)."""
        return {"id": principal.user_id, "username": principal.username, "created_at": iso(principal.created_at)}
