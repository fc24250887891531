"""Checks tower-dt-signature's ES256 (`DT-Asymmetric-Signature`) against PyJWT, both ways.

    python3 interop/check_pyjwt_es256.py verify <dir-from-sign_requests_es256>
    python3 interop/check_pyjwt_es256.py sign <dir-from-sign_requests_es256> <out-dir> <org-id>

`verify` (run by `sign_requests_es256`, which serves its key while this runs): requests
signed by our `AsymmetricSigner` must verify with PyJWT, the key taken from the identity
server found at $DT_OIDC_DISCOVERY_URL (discovery document, then PyJWKClient on its
`jwks_uri`), PyJWT checking `alg` ES256, `iss`, `sub`, `exp` and `iat`, this script
checking `checksum_sha256` against the body and DT's exact header and claim layout. Each
accepted request is also checked with one body byte changed, one signature character
changed, another key and another allowed algorithm, all of which must fail; the
`refuse-*` requests must fail in PyJWT (or, for a changed body, on the checksum).

`sign`: the bodies of the accepted requests in the first folder, signed by PyJWT with a
fresh P-256 key in DT's token shape, written to <out-dir> with the public JWK Set
(`keys.json`) and tampered requests, each naming the error code tower-dt-signature must
refuse it with: `interop/verify_requests.rs` checks them.

A missing package is an ImportError: this script never skips.
"""

import base64
import hashlib
import hmac
import json
import os
import pathlib
import secrets
import sys
import time
import urllib.request

import jwt  # PyJWT, with the `crypto` extra
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from tally import Tally

CLAIM_ORDER = ["checksum_sha256", "exp", "iat", "iss", "sub"]
LIFETIME = 300
DT_ISSUER = "https://identity.disruptive-technologies.com/data-connector"
# DT's ids (xid): 20 characters of base32hex, lowercase.
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"

TALLY = Tally()
check = TALLY.check


def b64decode(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def dt_header(kid):
    return f'{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}'


def sha256_hex(body):
    return hashlib.sha256(body.encode()).hexdigest()


def change_body_byte(body):
    """One digit of the event id changed: still valid JSON, another event."""
    index = body.index('"eventId":"') + len('"eventId":"')
    flipped = "0" if body[index] != "0" else "1"
    return body[:index] + flipped + body[index + 1:]


def raises(error_type, call):
    """Whether `call` raises `error_type` (anything else, or nothing, is a failure)."""
    try:
        call()
    except error_type:
        return True, ""
    except Exception as error:  # noqa: BLE001 - report the wrong error
        return False, repr(error)
    return False, "no error"


# -- verify: our tokens, PyJWT's checks ---------------------------------------------------


def verify(directory):
    server = json.loads((directory / "server.json").read_text())
    issuer, org, kid = server["issuer"], server["org_id"], server["kid"]
    # Set by sign_requests_es256; a KeyError here is a failure, never a skip.
    discovery_url = os.environ["DT_OIDC_DISCOVERY_URL"]
    check("discovery url", discovery_url == server["discovery_url"], discovery_url)
    with urllib.request.urlopen(discovery_url, timeout=10) as response:
        discovery = json.load(response)
    check("discovery issuer", discovery["issuer"] == issuer, discovery["issuer"])
    check("discovery algs", "ES256" in discovery["id_token_signing_alg_values_supported"])
    check("discovery jwks_uri", discovery["jwks_uri"] == server["jwks_url"])

    client = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False, timeout=10)
    jwk_set = client.get_jwk_set()
    check("jwks: one key", [key.key_id for key in jwk_set.keys] == [kid])
    check("jwks: ES256", jwk_set.keys[0].algorithm_name == "ES256")

    def decode(token, key=None, algorithms=("ES256",)):
        key = key if key is not None else client.get_signing_key_from_jwt(token).key
        return jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            issuer=issuer,
            subject=org,
            options={"require": ["exp", "iat", "iss", "sub", "checksum_sha256"]},
        )

    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    files = sorted(p for p in directory.glob("*.json") if p.name != "server.json")
    check("request files", len(files) == server["requests"] == 19 + 6, f"found {len(files)}")
    accepted = refused = 0
    for path in files:
        request = json.loads(path.read_text())
        name, body = request["name"], request["body"]
        headers = request["headers"]
        token = headers["DT-Asymmetric-Signature"]
        if request["expect"] == "accept":
            # DT's layout, byte for byte where it is fixed.
            header_b64, claims_b64, _ = token.split(".")
            check(f"{name}: JOSE header", b64decode(header_b64).decode() == dt_header(kid))
            claims_json = b64decode(claims_b64).decode()
            layout = json.loads(claims_json)
            check(f"{name}: claim order", list(layout) == CLAIM_ORDER, claims_json)
            check(f"{name}: exp", layout["exp"] == layout["iat"] + LIFETIME)
            check(f"{name}: Content-Length", headers["Content-Length"] == str(len(body.encode())))
            try:
                claims = decode(token)
            except Exception as error:  # noqa: BLE001 - any refusal is a failure
                check(f"{name}: PyJWT accepts", False, repr(error))
                continue
            check(f"{name}: PyJWT accepts", claims == layout)
            check(f"{name}: checksum_sha256", claims["checksum_sha256"] == sha256_hex(body))
            accepted += 1

            # Tampered: each must fail.
            tampered = change_body_byte(body)
            check(f"{name}: changed body byte", decode(token)["checksum_sha256"] != sha256_hex(tampered))
            ok, detail = raises(jwt.exceptions.InvalidSignatureError, lambda: decode(token, key=other_key))
            check(f"{name}: other key refused", ok, detail)
            signature = token.rsplit(".", 1)[1]
            flipped = "A" if signature[-2] != "A" else "B"
            broken = token[: -2] + flipped + token[-1]
            ok, detail = raises(jwt.exceptions.InvalidSignatureError, lambda: decode(broken))
            check(f"{name}: changed signature refused", ok, detail)
            ok, detail = raises(jwt.exceptions.InvalidAlgorithmError, lambda: decode(token, algorithms=["RS256"]))
            check(f"{name}: alg outside the allowed list refused", ok, detail)
        else:
            case = request["case"]
            expected = {
                "expired": jwt.exceptions.ExpiredSignatureError,
                "other-org": jwt.exceptions.InvalidSubjectError,
                "other-issuer": jwt.exceptions.InvalidIssuerError,
                "unknown-key": jwt.exceptions.PyJWKClientError,  # no key with that kid
                "same-kid-other-key": jwt.exceptions.InvalidSignatureError,
            }
            if case == "changed-body":
                claims = decode(token)
                ok = claims["checksum_sha256"] != sha256_hex(body)
                check(f"{name}: checksum mismatch", ok)
            elif case in expected:
                ok, detail = raises(expected[case], lambda: decode(token))
                check(f"{name}: refused with {expected[case].__name__}", ok, detail)
            else:
                ok = False
                check(f"{name}: known case", False, case)
            refused += ok
    print(f"check_pyjwt_es256 verify: PyJWT accepted {accepted} of our requests, refused {refused}")


# -- sign: PyJWT's tokens, for our Verifier ----------------------------------------------


def dt_id():
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(20))


def public_jwk(private_key, kid):
    jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "ES256"})
    return jwk


def claims_for(body, iat, iss=DT_ISSUER, sub=None, exp=None):
    # DT's claims, in DT's order.
    return {
        "checksum_sha256": sha256_hex(body),
        "exp": iat + LIFETIME if exp is None else exp,
        "iat": iat,
        "iss": iss,
        "sub": sub,
    }


def mint(claims, key, kid, headers=None):
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, **(headers or {})})


def der_signed(claims, key, kid):
    """An ES256 token whose signature is DER (as a naive signer makes it), not r || s."""
    signing_input = b64encode(dt_header(kid).encode()) + "." + b64encode(
        json.dumps(claims, separators=(",", ":")).encode()
    )
    signature = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    return signing_input + "." + b64encode(signature)


def hs256_with_public_key(claims, key, kid):
    """HS256 with the public key's PEM as the secret: the algorithm-confusion attack. Made
    by hand: PyJWT refuses an asymmetric key as an HMAC secret."""
    header = f'{{"alg":"HS256","kid":"{kid}","typ":"JWT"}}'
    signing_input = b64encode(header.encode()) + "." + b64encode(
        json.dumps(claims, separators=(",", ":")).encode()
    )
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64encode(mac)


def sign(source, out, org):
    key = ec.generate_private_key(ec.SECP256R1())
    kid = dt_id()
    jwk = public_jwk(key, kid)
    out.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    written = 0

    def write(name, expect, token, body, error=None):
        nonlocal written
        request = {
            "name": name,
            "expect": expect,
            "headers": {
                "DT-Asymmetric-Signature": token,
                "Content-Type": "application/json",
                "Content-Length": str(len(body.encode())),
            },
            "body": body,
        }
        if error:
            request["error"] = error
        (out / f"{name}.json").write_text(json.dumps(request))
        written += 1

    bodies = {}
    for path in sorted(source.glob("*.json")):
        request = json.loads(path.read_text())
        if request.get("expect") == "accept":
            bodies[request["name"]] = request["body"]
    check("bodies to sign", len(bodies) == 19, f"found {len(bodies)}")
    for name, body in bodies.items():
        token = mint(claims_for(body, now, sub=org), key, kid)
        header = b64decode(token.split(".")[0]).decode()
        check(f"{name}: PyJWT writes DT's header", header == dt_header(kid), header)
        write(f"accept-{name}", "accept", token, body)

    body = bodies["touch"]
    stranger = ec.generate_private_key(ec.SECP256R1())
    stranger_jwk = public_jwk(stranger, kid)
    good = claims_for(body, now, sub=org)
    no_sha256 = {k: v for k, v in good.items() if k != "checksum_sha256"}
    refused = [
        ("changed-body", mint(good, key, kid), change_body_byte(body), "checksum_mismatch"),
        ("other-org", mint(claims_for(body, now, sub=org + "-not"), key, kid), body, "wrong_organization"),
        ("other-issuer", mint(claims_for(body, now, iss=DT_ISSUER + "/", sub=org), key, kid), body, "wrong_issuer"),
        ("expired", mint(claims_for(body, now - 3600, sub=org), key, kid), body, "expired"),
        ("same-kid-other-key", mint(good, stranger, kid), body, "invalid_signature"),
        ("unknown-key", mint(good, stranger, dt_id()), body, "unknown_key"),
        ("no-checksum", mint(no_sha256, key, kid), body, "missing_sha256"),
        # The public key as an HMAC secret: the algorithm-confusion attack.
        ("hs256-public-key", hs256_with_public_key(good, key, kid), body, "unsupported_algorithm"),
        ("alg-none", jwt.encode(good, None, algorithm="none", headers={"kid": kid}), body,
         "unsupported_algorithm"),
        ("der-signature", der_signed(good, key, kid), body, "invalid_signature"),
        # The attacker's key embedded in the header, under the served kid: the embedded key
        # is never used, the served one finds the signature invalid.
        ("embedded-jwk", mint(good, stranger, kid, headers={"jwk": stranger_jwk}), body,
         "invalid_signature"),
    ]
    for case, token, sent_body, error in refused:
        write(f"refuse-{case}", "refuse", token, sent_body, error)

    keys = {"issuer": DT_ISSUER, "org_id": org, "jwks": {"keys": [jwk]}, "requests": written}
    (out / "keys.json").write_text(json.dumps(keys))
    print(f"check_pyjwt_es256 sign: wrote {written} PyJWT-signed requests to {out} (kid {kid})")


def main():
    usage = __doc__.strip().splitlines()[2:4]
    if len(sys.argv) == 3 and sys.argv[1] == "verify":
        verify(pathlib.Path(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "sign":
        sign(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4])
    else:
        print("usage:\n" + "\n".join(usage), file=sys.stderr)
        sys.exit(2)
    TALLY.finish()


if __name__ == "__main__":
    main()
