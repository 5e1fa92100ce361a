"""Bearer tokens: what the gateway accepts, what it refuses, and how routes answer."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from switchboard.channel_gateway.auth import SCOPE_CHAT, Authenticator, InvalidToken, Principal, requires
from switchboard.cli.tokens import mint

SECRET = "a-test-secret-of-at-least-32-bytes!"
ISS, AUD = "switchboard", "switchboard-gateway"


def _auth() -> Authenticator:
    return Authenticator(issuer=ISS, audience=AUD, secret=SECRET)


def _token(**claims: object) -> str:
    now = int(time.time())
    base: dict[str, object] = {"sub": "ada", "scope": "chat", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 60}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


async def test_a_minted_token_names_its_subject_and_scopes() -> None:
    caller = await _auth().verify(mint(SECRET, "ada", ["chat", "admin"], ttl_s=600))
    assert (caller.subject, caller.scopes) == ("ada", frozenset({"chat", "admin"}))
    assert time.time() + 590 < caller.expires_at <= time.time() + 600  # the token's exp
    assert (await _auth().verify(_token(scope=None, scp=["chat"]))).scopes == {"chat"}
    assert Principal("x", frozenset({"admin"})).allows(SCOPE_CHAT)  # admin implies chat
    assert not Principal("x", frozenset({"audit"})).allows(SCOPE_CHAT)


@pytest.mark.parametrize(
    "token",
    [
        _token(exp=int(time.time()) - 120),  # expired (beyond the 30 s leeway)
        _token(aud="someone-else"),
        _token(iss="another-issuer"),
        _token(sub=None),
        _token(scope=7),
        jwt.encode({"sub": "ada", "iss": ISS, "aud": AUD, "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256"),
        _token()[:-3] + "abc",  # signature tampered with
        "not-a-jwt",
        jwt.encode({"sub": "ada", "iss": ISS, "aud": AUD, "exp": int(time.time()) + 60}, None, algorithm="none"),
    ],
)
async def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        await _auth().verify(token)


async def test_an_identity_providers_public_key_verifies_its_tokens() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    auth = Authenticator(issuer=ISS, audience=AUD, public_key=public.decode())
    now = int(time.time())
    claims = {"sub": "bob", "scope": "chat", "iss": ISS, "aud": AUD, "exp": now + 60}
    assert (await auth.verify(jwt.encode(claims, key, algorithm="RS256"))).subject == "bob"
    with pytest.raises(InvalidToken):  # an HS256 token "signed" with the public key is not accepted
        await auth.verify(jwt.encode(claims, SECRET, algorithm="HS256"))
    with pytest.raises(ValueError, match="exactly one"):
        Authenticator(issuer=ISS, audience=AUD, secret=SECRET, public_key=public.decode())


def test_routes_answer_401_without_a_token_and_403_without_the_scope() -> None:
    app = FastAPI()

    @app.get("/chat")
    async def chat(caller: Principal = Depends(requires(_auth(), SCOPE_CHAT))) -> dict[str, str]:  # noqa: B008
        return {"sub": caller.subject}

    client = TestClient(app)
    missing = client.get("/chat")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    invalid = client.get("/chat", headers={"Authorization": "Bearer nonsense"})
    assert invalid.status_code == 401 and 'error="invalid_token"' in invalid.headers["www-authenticate"]
    no_scope = client.get("/chat", headers={"Authorization": f"Bearer {_token(scope='audit')}"})
    assert no_scope.status_code == 403 and 'error="insufficient_scope"' in no_scope.headers["www-authenticate"]
    ok = client.get("/chat", headers={"Authorization": f"Bearer {_token()}"})
    assert ok.status_code == 200 and ok.json() == {"sub": "ada"}


async def test_while_the_secret_is_rotated_tokens_of_the_previous_one_are_taken() -> None:
    new = "the-new-secret-of-at-least-32-bytes!"
    rotating = Authenticator(issuer=ISS, audience=AUD, secret=new, previous_secret=SECRET)
    for signed_with in (SECRET, new):
        token = mint(signed_with, "alice", ["chat"])
        assert (await rotating.verify(token)).subject == "alice"
    # Once the previous secret is gone, its tokens are not.
    with pytest.raises(InvalidToken, match="Signature"):
        await Authenticator(issuer=ISS, audience=AUD, secret=new).verify(mint(SECRET, "alice", ["chat"]))
    forged = mint("some-other-secret-of-32-bytes-long", "mallory", ["chat"])
    with pytest.raises(InvalidToken):
        await rotating.verify(forged)
