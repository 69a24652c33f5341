"""The token store: where tokens come from, what is kept, and the 401/403 answers."""

from __future__ import annotations

import pytest

from serve.errors import Forbidden, Unauthorized
from serve.tokens import TOKENS_DIR_ENV, TokenStore, digest, token_env_name

TOKEN = "kN5PB/GGgL5IcXxViegzUA=="


def test_env_name_follows_the_model_name():
    assert token_env_name("object-detection") == "RUNWAY_TOKEN_OBJECT_DETECTION"


def test_tokens_from_env_and_secret_files(tmp_path):
    (tmp_path / "yolo").write_text("old-token\nnew-token\n")  # a Secret key mounted as a file, rotated
    store = TokenStore.from_environment(["yolo", "openpose", "movenet"],
                                        {TOKENS_DIR_ENV: str(tmp_path), token_env_name("openpose"): TOKEN})
    assert store.is_private("yolo") and store.is_private("openpose") and not store.is_private("movenet")
    assert store.matches("yolo", "old-token") and store.matches("yolo", "new-token")
    assert store.matches("openpose", TOKEN) and not store.matches("openpose", "old-token")
    store.check("yolo", False, "Bearer new-token")
    store.check("openpose", False, f"bearer {TOKEN}")  # the scheme is case-insensitive (RFC 7235)


def test_only_digests_are_kept():
    store = TokenStore.from_environment(["yolo"], {token_env_name("yolo"): TOKEN})
    assert TOKEN not in repr(vars(store)) and digest(TOKEN) in store._digests["yolo"]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic " + TOKEN, TOKEN, "Bearer wrong",
                                    "Bearer " + TOKEN[:-1]])
def test_missing_or_wrong_token_is_401_and_never_echoed(header):
    store = TokenStore.from_environment(["yolo"], {token_env_name("yolo"): TOKEN})
    with pytest.raises(Unauthorized) as caught:
        store.check("yolo", False, header)
    assert caught.value.status == 401 and caught.value.headers["WWW-Authenticate"] == "Bearer"
    assert TOKEN[:8] not in caught.value.detail and "wrong" not in caught.value.detail


def test_private_without_a_token_is_403_and_public_is_a_choice():
    store = TokenStore.from_environment(["movenet"], {})
    with pytest.raises(Forbidden) as caught:
        store.check("movenet", False, None)
    assert caught.value.status == 403 and "RUNWAY_TOKEN_MOVENET" in caught.value.detail
    assert "hosted.tokensSecret" in caught.value.detail  # the chart's value, as values.yaml names it
    store.check("movenet", True, None)  # public: no token needed


def test_a_configured_token_wins_over_public():
    store = TokenStore.from_environment(["yolo"], {token_env_name("yolo"): TOKEN})
    with pytest.raises(Unauthorized):
        store.check("yolo", True, None)
