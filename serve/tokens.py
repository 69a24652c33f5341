"""Tokens for the hosted routes (`/<name>/v1`): which models are private, and checking a presented token.

Where tokens come from, per model (several tokens per model are allowed, separated by whitespace, so one can be
rotated while the old one still works):
- the environment variable `RUNWAY_TOKEN_<NAME>` (the name upper-cased, `-` as `_`): local use;
- a file named `<name>` in the folder `RUNWAY_TOKENS_DIR`: the chart mounts there the existing Secret named by
  its value `hosted.tokensSecret`, one key per model.
Only SHA-256 digests are kept; a presented token is hashed and compared to every digest in constant time, so
neither its length nor a matching prefix shows in the timing. Tokens are never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from serve.errors import Forbidden, Unauthorized

TOKEN_ENV_PREFIX = "RUNWAY_TOKEN_"
TOKENS_DIR_ENV = "RUNWAY_TOKENS_DIR"
BEARER = "bearer"


def token_env_name(model: str) -> str:
    return TOKEN_ENV_PREFIX + model.upper().replace("-", "_")


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenStore:
    def __init__(self, digests: Mapping[str, Iterable[bytes]]):
        self._digests = {name: tuple(found) for name, found in digests.items() if found}

    @classmethod
    def from_environment(cls, names: Iterable[str], environ: Mapping[str, str] = os.environ) -> TokenStore:
        folder = environ.get(TOKENS_DIR_ENV)
        digests: dict[str, list[bytes]] = {}
        for name in names:
            texts = [environ.get(token_env_name(name), "")]
            if folder and (Path(folder) / name).is_file():
                texts.append((Path(folder) / name).read_text())
            digests[name] = [digest(token) for text in texts for token in text.split()]
        return cls(digests)

    def is_private(self, name: str) -> bool:
        return name in self._digests

    def matches(self, name: str, token: str) -> bool:
        presented = digest(token)
        found = False
        for stored in self._digests.get(name, ()):  # every digest is compared: no early exit to time
            found |= hmac.compare_digest(presented, stored)
        return found

    def check(self, name: str, public: bool, authorization: str | None) -> None:
        """Let a request through or raise Unauthorized (401: no or wrong token) / Forbidden (403: a private model
        with no token configured, which nobody can call)."""
        if not self.is_private(name):
            if public:
                return
            raise Forbidden(f"model {name} is private and no token is configured for it; the operator sets "
                            f"{token_env_name(name)} (or the file {name} in {TOKENS_DIR_ENV}: the chart's "
                            f"value hosted.tokensSecret names that Secret), or marks it serving.hosted.public")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != BEARER or not token.strip():
            raise Unauthorized(f"model {name} is private: send Authorization: Bearer <token>")
        if not self.matches(name, token.strip()):
            raise Unauthorized(f"the token is not valid for model {name}")
