"""Checks requests signed by tower-dt-signature's `Signer` against DT's own receiver
library, `dtintegrations` (HttpPush), as the oracle.

    python3 interop/check_dtintegrations.py <dir-from-sign_requests> <secret>

For every request file: DT's library must accept it and decode the same event; the same
request with one body byte changed must be refused with "Checksum mismatch."; the same
request checked with another secret must be refused with "Invalid secret.". A missing
package is an ImportError: this script never skips.
"""

import base64
import json
import pathlib
import sys
import warnings

import disruptive  # noqa: F401  (installed by dtintegrations; its errors are used below)
import jwt  # PyJWT, what dtintegrations verifies with
from dtintegrations import data_connector, provider
from tally import Tally

DT_JOSE_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
CLAIM_ORDER = ["checksum", "checksum_sha256", "exp", "iat", "jti"]

TALLY = Tally()
check = TALLY.check


def decode(headers, body, secret):
    """DT's own entry point, as a Lambda handler would call it."""
    request = {"headers": headers, "body": body}
    return data_connector.HttpPush.from_provider(request, provider.LAMBDA, secret)


def refused_with(headers, body, secret, message):
    try:
        decode(headers, body, secret)
    except disruptive.errors.ConfigurationError as error:
        return str(error) == message, repr(error)
    return False, "accepted"


def main():
    # DT's test secret is short; PyJWT warns about that on every decode.
    warnings.filterwarnings("ignore", message="The HMAC key is")
    directory, secret = pathlib.Path(sys.argv[1]), sys.argv[2]
    files = sorted(directory.glob("*.json"))
    check("request files", len(files) == 19, f"found {len(files)}")
    for path in files:
        name = path.stem
        request = json.loads(path.read_text())
        headers, body = request["headers"], request["body"]
        token = headers["X-Dt-Signature"]
        sent = json.loads(body)

        # The token's layout is DT's, byte for byte where it is fixed.
        check(f"{name}: JOSE header", token.split(".")[0] == DT_JOSE_HEADER)
        claims_json = base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
        claims = json.loads(claims_json)
        check(f"{name}: claim order", list(claims) == CLAIM_ORDER, claims_json)
        check(f"{name}: exp", claims["exp"] == claims["iat"] + 3600)
        check(f"{name}: jti", len(claims["jti"]) == 20)
        check(f"{name}: PyJWT", jwt.decode(token, secret, algorithms=["HS256"]) == claims)

        # DT's library accepts it and reads the same event.
        try:
            push = decode(headers, body, secret)
        except Exception as error:  # noqa: BLE001 - report any refusal as a failure
            check(f"{name}: accepted", False, repr(error))
            continue
        check(f"{name}: accepted", True)
        check(f"{name}: event type", push.event.event_type == request["eventType"] == name)
        check(f"{name}: event id", push.event.event_id == sent["event"]["eventId"])
        check(f"{name}: labels", push.labels == sent["labels"])
        check(f"{name}: typed data", type(push.event.data).__name__.lower()
              == name.lower(), type(push.event.data).__name__)
        metadata = push.get_device_metadata()
        check(f"{name}: metadata", metadata is not None
              and metadata.device_id == push.event.device_id
              and metadata.project_id == push.event.project_id)

        # One changed byte in the body: refused.
        index = body.index('"eventId":"') + len('"eventId":"')
        flipped = "0" if body[index] != "0" else "1"
        tampered = body[:index] + flipped + body[index + 1:]
        ok, detail = refused_with(headers, tampered, secret, "Checksum mismatch.")
        check(f"{name}: changed byte refused", ok, detail)

        # Another secret: refused.
        ok, detail = refused_with(headers, body, secret + "x", "Invalid secret.")
        check(f"{name}: other secret refused", ok, detail)

    TALLY.finish()


if __name__ == "__main__":
    main()
