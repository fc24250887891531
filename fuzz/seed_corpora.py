#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets es256, jwks, discovery, cache_control and
service_policies (corpus/<target>/), from DT's real vectors (tests/data/dt-vectors), the
hostile inputs of the tests (tests/it/hostile_reader.rs, tests/it/asymmetric.rs,
tests/it/jwks.rs, src/keys/fetch.rs) and the fixed test keys in keys/.

    python3 fuzz/seed_corpora.py    # needs the `cryptography` package

The input formats are those described at the top of each target.
"""
import base64
import json
import pathlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "tests" / "data" / "dt-vectors"
DEV = json.loads((VECTORS / "asymmetric-dev-2024-10-31.json").read_text())
SHA256 = json.loads((VECTORS / "touch-2022-02-10-sha256-valid.json").read_text())
SHA1 = json.loads((VECTORS / "touch-2022-01-12-sha1-only-with-metadata.json").read_text())


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key(name):
    der = (FUZZ / "keys" / f"es256-{name}.pk8").read_bytes()
    return serialization.load_der_private_key(der, password=None)


KEYS = {"fuzz-a": key("a"), "fuzz-b": key("b"), "fuzz-outsider": key("outsider")}


def jwk(name, **extra):
    """The public JWK of KEYS[name], under kid `name`, with `extra` members replaced."""
    numbers = KEYS[name].public_key().public_numbers()
    out = {"kty": "EC", "crv": "P-256", "kid": name, "use": "sig", "alg": "ES256",
           "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}
    out.update(extra)
    return out


def es_token(kid, header, claims):
    """A compact JWS over the exact header and claims bytes, signed with KEYS[kid]."""
    signing_input = f"{b64(header.encode())}.{b64(claims.encode())}".encode()
    r, s = decode_dss_signature(KEYS[kid].sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{signing_input.decode()}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def write(target, name, data):
    path = FUZZ / "corpus" / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def compact(value):
    return json.dumps(value, separators=(",", ":"))


DEV_ES = DEV["headers"]["DT-Asymmetric-Signature"]
DEV_HMAC = DEV["headers"]["X-Dt-Signature"]
BODY = DEV["body"]
# The dev token's own header and claims bytes, as DT wrote them.
DEV_CLAIMS = unb64(DEV_ES.split(".")[1]).decode()
ES_HEADER = lambda kid: compact({"alg": "ES256", "kid": kid, "typ": "JWT"})  # noqa: E731
IAT = DEV["claims"]["iat"]
# HMAC claims in DT's shape for the same body, live at the dev token's time.
HMAC_CLAIMS_ES_TIME = compact({
    "checksum": json.loads(unb64(DEV_HMAC.split(".")[1]))["checksum"],
    "checksum_sha256": DEV["claims"]["checksum_sha256"],
    "exp": IAT + 3600, "iat": IAT, "jti": "c82gg99hga35jc2afkeg"})


def claims_with(**edit):
    claims = json.loads(DEV_CLAIMS)
    claims.update(edit)
    return compact({k: v for k, v in claims.items() if v is not None})


# es256: mode, then `token \n body` (mode bit 0: `header \t claims` signed; bits 1-2 the
# key a/b/outsider; bit 3 the header twice).
def es256(name, mode, token, body=BODY):
    write("es256", name, bytes([mode]) + token.encode() + b"\n" + body.encode())


es256("dt-dev-token-unknown-kid", 0, DEV_ES)
es256("dt-dev-claims-fuzz-a", 0, es_token("fuzz-a", ES_HEADER("fuzz-a"), DEV_CLAIMS))
es256("dt-dev-claims-fuzz-b-twice", 8, es_token("fuzz-b", ES_HEADER("fuzz-b"), DEV_CLAIMS))
es256("dt-dev-claims-signed-a", 1, f"{ES_HEADER('fuzz-a')}\t{DEV_CLAIMS}")
es256("dt-dev-claims-signed-b", 3, f"{ES_HEADER('fuzz-b')}\t{DEV_CLAIMS}")
es256("dt-dev-claims-default-header", 1, DEV_CLAIMS)
es256("outsider-under-kid-a", 5, f"{ES_HEADER('fuzz-a')}\t{DEV_CLAIMS}")
es256("hmac-token-in-es-header", 0, DEV_HMAC)
hostile_headers = {
    "alg-none": {"alg": "none", "kid": "fuzz-a"},
    "alg-hs256-kid": {"alg": "HS256", "kid": "fuzz-a", "typ": "JWT"},
    "alg-es384": {"alg": "ES384", "kid": "fuzz-a"},
    "crit": {"alg": "ES256", "kid": "fuzz-a", "crit": ["exp"]},
    "crit-null": {"alg": "ES256", "kid": "fuzz-a", "crit": None},
    "no-kid": {"alg": "ES256", "typ": "JWT"},
    "dt-dev-kid": {"alg": "ES256", "kid": DEV["jose_header"]["kid"], "typ": "JWT"},
    "jku-x5u-jwk": {"alg": "ES256", "kid": "fuzz-a", "typ": "JWT",
                    "jku": "http://127.0.0.1:1/jwks", "x5u": "http://127.0.0.1:1/cert.pem",
                    "jwk": jwk("fuzz-outsider")},
}
for name, header in hostile_headers.items():
    es256(f"hostile-{name}", 1, f"{compact(header)}\t{DEV_CLAIMS}")
hostile_claims = {
    "another-org": claims_with(sub="someone else"),
    "another-issuer": claims_with(iss="https://identity.disruptive-technologies.com/data-connector"),
    "expired": claims_with(iat=IAT - 400, exp=IAT - 100),
    "iat-future": claims_with(iat=IAT + 400, exp=IAT + 700),
    "no-exp": claims_with(exp=None),
    "exp-string": claims_with(exp="soon"),
    "no-sha256": claims_with(checksum_sha256=None),
    "sha256-upper": claims_with(checksum_sha256=DEV["claims"]["checksum_sha256"].upper()),
    "sub-number": claims_with(sub=7),
}
for name, claims in hostile_claims.items():
    es256(f"hostile-{name}", 1, f"{ES_HEADER('fuzz-a')}\t{claims}")
es256("hostile-claims-array", 1, f"{ES_HEADER('fuzz-a')}\t[1,2]")
es256("hostile-duplicate-sub", 1, f"{ES_HEADER('fuzz-a')}\t" + DEV_CLAIMS[:-1] + ',"sub":"x"}')
es256("hostile-two-parts", 0, ".".join(DEV_ES.split(".")[:2]))
es256("hostile-short-signature", 0, DEV_ES[:-4])
es256("tampered-body", 0, es_token("fuzz-a", ES_HEADER("fuzz-a"), DEV_CLAIMS),
      BODY.replace("touch", "tauch"))

# jwks: the key set's bytes.
SET = {"keys": [jwk("fuzz-a"), jwk("fuzz-b")]}
write("jwks", "fixed-set", compact(SET))
write("jwks", "identity-server-empty", '{"keys":[]}')
write("jwks", "pretty", json.dumps(SET, indent=2))
bad = {
    "duplicate-kid": [jwk("fuzz-a"), jwk("fuzz-b", kid="fuzz-a")],
    "no-kid": [{k: v for k, v in jwk("fuzz-a").items() if k != "kid"}],
    "kty-rsa": [jwk("fuzz-a", kty="RSA")],
    "crv-p384": [jwk("fuzz-a", crv="P-384")],
    "use-enc": [jwk("fuzz-a", use="enc")],
    "alg-rs256": [jwk("fuzz-a", alg="RS256")],
    "no-use-no-alg": [{k: v for k, v in jwk("fuzz-a").items() if k not in ("use", "alg")}],
    "x-short": [jwk("fuzz-a", x=b64(b"\x01" * 31))],
    "x-padded": [jwk("fuzz-a", x=jwk("fuzz-a")["x"] + "=")],
    "off-curve": [jwk("fuzz-a", y=b64(b"\x01" * 32))],
    "kid-number": [jwk("fuzz-a", kid=7)],
    "null-members": [jwk("fuzz-a", use=None, alg=None)],
}
for name, keys in bad.items():
    write("jwks", f"hostile-{name}", compact({"keys": keys}))
write("jwks", "hostile-keys-object", '{"keys":{"kid":"fuzz-a"}}')
write("jwks", "hostile-not-json", "<html>502 Bad Gateway</html>")
write("jwks", "hostile-duplicate-member", compact(SET)[:-1] + ',"keys":[]}')

# discovery: the document's bytes.
PROD = "https://identity.disruptive-technologies.com/data-connector"
documents = {
    "dt-production": {"issuer": PROD, "jwks_uri": PROD + "/.well-known/jwks.json",
                      "id_token_signing_alg_values_supported": ["ES256"]},
    "dt-dev": {"issuer": DEV["issuer"], "jwks_uri": DEV["issuer"] + "/.well-known/jwks.json"},
    "identity-server": {"issuer": "http://127.0.0.1:8080/data-connector",
                        "jwks_uri": "http://127.0.0.1:8080/data-connector/jwks"},
    "loopback-v6": {"issuer": "x", "jwks_uri": "http://[::1]:8080/jwks"},
    "localhost": {"issuer": "x", "jwks_uri": "http://LocalHost/jwks"},
    "hostile-plain-http": {"issuer": PROD, "jwks_uri": "http://evil.example/jwks"},
    "hostile-credentials": {"issuer": PROD, "jwks_uri": "https://user:pw@evil.example/jwks"},
    "hostile-relative": {"issuer": PROD, "jwks_uri": "/jwks"},
    "hostile-ftp": {"issuer": PROD, "jwks_uri": "ftp://evil.example/jwks"},
    "hostile-issuer-number": {"issuer": 7, "jwks_uri": PROD + "/jwks"},
    "hostile-no-jwks-uri": {"issuer": PROD},
}
for name, document in documents.items():
    write("discovery", name, compact(document))
write("discovery", "hostile-duplicate-issuer",
      '{"issuer":"https://a.example","issuer":"https://b.example","jwks_uri":"https://a.example/j"}')
write("discovery", "hostile-not-json", "<html>404</html>")

# cache_control: one value per line.
values = {
    "identity-server": "max-age=300",
    "public-max-age": "public, max-age=300",
    "quoted": 'Max-Age="7"',
    "no-store": "no-store",
    "no-cache-after-max-age": "max-age=60, no-cache",
    "no-cache-field": 'no-cache="set-cookie", max-age=60',
    "public": "public",
    "not-a-number": "max-age=x",
    "first-wins": "max-age=10, max-age=20",
    "first-invalid-then-valid": "max-age=-1, max-age=20",
    "two-headers": "public\nmax-age=30",
    "s-maxage": "s-maxage=10, max-age=20",
    "empty": "",
    "spaces": "  max-age = 45 ,private",
    "huge": "max-age=99999999999999999999999",
    "quoted-comma": 'private="a, max-age=5", max-age=9',
}
for name, value in values.items():
    write("cache_control", name, value)


# service_policies: mode, chunk, header lines, blank line, body. Mode bits 0-1 the
# policy (hmac, asymmetric, both, either); 2 sign the HMAC line; 3 sign the ES line;
# 4-5 the ES key (a, b, outsider); 6 the clock of the HMAC vectors.
def service(name, mode, chunk, lines, body=BODY):
    head = "".join(f"{n}: {v}\n" for n, v in lines)
    write("service_policies", name, bytes([mode, chunk]) + head.encode() + b"\n" + body.encode())


POLICIES = ["hmac", "asymmetric", "both", "either"]
SIGNED_ES = f"{ES_HEADER('fuzz-a')}\t{DEV_CLAIMS}"
SIGNED_HMAC = f'{{"alg":"HS256","typ":"JWT"}}\t{HMAC_CLAIMS_ES_TIME}'
for p, policy in enumerate(POLICIES):
    # DT's dev request as captured: at the HMAC vectors' clock, the HMAC token is live.
    service(f"{policy}-dt-dev-request", p | 64, 255, DEV["headers"].items())
    service(f"{policy}-dt-dev-request-es-time-chunk7", p, 7, DEV["headers"].items())
    # Both tokens valid (signed), chunked.
    for chunk in (1, 255):
        service(f"{policy}-both-valid-chunk{chunk}", p | 4 | 8, chunk,
                [("X-Dt-Signature", SIGNED_HMAC), ("DT-Asymmetric-Signature", SIGNED_ES)])
    service(f"{policy}-es-only", p | 8, 13, [("dt-asymmetric-signature", SIGNED_ES)])
    service(f"{policy}-hmac-only-sha256-vector", p | 64, 255,
            SHA256["headers"].items(), SHA256["body"])
    service(f"{policy}-hmac-only-sha1-vector", p | 64, 3, SHA1["headers"].items(), SHA1["body"])
    service(f"{policy}-es-outsider", p | 4 | 8 | 32, 255,
            [("X-Dt-Signature", SIGNED_HMAC), ("DT-Asymmetric-Signature", SIGNED_ES)])
    service(f"{policy}-es-twice", p | 4 | 8, 255,
            [("X-Dt-Signature", SIGNED_HMAC), ("DT-Asymmetric-Signature", SIGNED_ES),
             ("DT-Asymmetric-Signature", SIGNED_ES)])
    service(f"{policy}-tampered-body", p | 4 | 8, 64,
            [("X-Dt-Signature", SIGNED_HMAC), ("DT-Asymmetric-Signature", SIGNED_ES)],
            BODY.replace("touch", "tauch"))
    service(f"{policy}-no-header", p, 255, [])
