"""The platforms' signatures checked against vectors computed outside this project.

A test that signs with the project's own function and verifies with it again passes whatever
HMAC the function computes (issue 20: a wrong HMAC left every unit test green). Each vector
below comes from a published source, named next to it; each check is followed by its
mutations (a wrong key, a changed body, a changed timestamp), which must all be refused.
"""

from __future__ import annotations

import pytest

from services.ingest import auth
from services.ingest.adapters import zoom
from services.ingest.errors import ApiError

# RFC 2202 section 3, test case 2 (HMAC-SHA1) and RFC 4231 section 4.3, test case 2
# (HMAC-SHA256): key "Jefe", data "what do ya want for nothing?".
RFC_KEY = "Jefe"
RFC_DATA = b"what do ya want for nothing?"
RFC2202_SHA1 = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
RFC4231_SHA256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

# Segment's webhook destination: "X-Signature ... an HMAC-SHA1 hex digest of the request body,
# keyed with the shared secret" (segment.com/docs/connections/destinations/catalog/webhooks/).
# Segment publishes no digest; this one is computed with OpenSSL, not with Python:
#   printf '%s' "$BODY" | openssl dgst -sha1 -hmac segment-shared-secret
SEGMENT_SECRET = "segment-shared-secret"
SEGMENT_BODY = (b'{"type":"track","event":"Webinar Registered","userId":"u-1","messageId":"m-1",'
                b'"timestamp":"2026-11-30T10:00:00.000Z","properties":{"title":"My Webinar"}}')
SEGMENT_SIGNATURE = "b1f787ac6728f1b18d324b90ca52e7accfd28a97"

# Zoom: x-zm-signature = "v0=" + hex HMAC-SHA256(secret token, "v0:{x-zm-request-timestamp}:{raw body}")
# (developers.zoom.us/docs/api/webhooks/#verify-webhook-events). Zoom publishes the construction,
# not a digest; this one computed with OpenSSL:
#   printf '%s' "v0:1626230691:$BODY" | openssl dgst -sha256 -hmac ZOOM_WEBHOOK_SECRET_TOKEN
ZOOM_SECRET = "ZOOM_WEBHOOK_SECRET_TOKEN"
ZOOM_BODY = (b'{"event":"webinar.registration_created","event_ts":1626230691572,"payload":'
             b'{"account_id":"AAAAAABBBB","object":{"id":"1234567890","uuid":"4444AAAiAAAAAiAAAiiAii==",'
             b'"topic":"My Webinar"}}}')
ZOOM_TIMESTAMP = "1626230691"
ZOOM_SIGNATURE = "v0=5367450ae3ba0976c881def987decb1fa2c424eb4cd6dee62e2ba8d835fd4ce5"
# URL validation: encryptedToken = hex HMAC-SHA256(secret token, plainToken), the plainToken of
# Zoom's documented example (same page, "Validate your webhook endpoint"); OpenSSL again.
ZOOM_PLAIN_TOKEN = "qgg8vlvZRS6UYooatFL8Aw"
ZOOM_ENCRYPTED_TOKEN = "86b96838c461c5cafc27d6631f663bbfd12746efb4293fc18dce8af8f1aaad30"

# SendGrid's Signed Event Webhook: the vector of SendGrid's own SDK test,
# github.com/sendgrid/sendgrid-python test/unit/test_eventwebhook.py (the same one is in
# sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js). The payload ends in CR LF.
SENDGRID_PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3"
                       "GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==")
SENDGRID_SIGNATURE = ("MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M1"
                      "5TluLtEZtM=")
SENDGRID_TIMESTAMP = "1600112502"
SENDGRID_PAYLOAD = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n')
# The "bad key" of the same SDK test: a valid P-256 key that did not sign the payload.
SENDGRID_OTHER_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCW"
                      "Hw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==")


def _refused(check) -> ApiError:
    with pytest.raises(ApiError) as caught:
        check()
    return caught.value


# --- Segment: X-Signature, HMAC-SHA1 of the raw body ---

def test_segment_hmac_is_rfc2202_hmac_sha1():
    assert auth.hmac_sha1_hex(RFC_KEY, RFC_DATA) == RFC2202_SHA1


def test_segment_signature_vector_accepted():
    auth.require_hmac("X-Signature", SEGMENT_SIGNATURE, auth.hmac_sha1_hex(SEGMENT_SECRET, SEGMENT_BODY))


@pytest.mark.parametrize("secret, body", [
    ("segment-shared-secreT", SEGMENT_BODY),                           # wrong key
    (SEGMENT_SECRET, SEGMENT_BODY.replace(b"My Webinar", b"My webinar")),  # body changed
])
def test_segment_signature_mutations_refused(secret, body):
    error = _refused(lambda: auth.require_hmac("X-Signature", SEGMENT_SIGNATURE, auth.hmac_sha1_hex(secret, body)))
    assert error.status == 403 and "X-Signature" in error.message


# --- Zoom: x-zm-signature and URL validation ---

def test_zoom_signature_vector():
    assert zoom.signature(ZOOM_SECRET, ZOOM_TIMESTAMP, ZOOM_BODY) == ZOOM_SIGNATURE
    auth.require_hmac("x-zm-signature", ZOOM_SIGNATURE, zoom.signature(ZOOM_SECRET, ZOOM_TIMESTAMP, ZOOM_BODY))


@pytest.mark.parametrize("secret, timestamp, body", [
    ("ZOOM_WEBHOOK_SECRET_TOKEn", ZOOM_TIMESTAMP, ZOOM_BODY),                      # wrong key
    (ZOOM_SECRET, ZOOM_TIMESTAMP, ZOOM_BODY.replace(b"1234567890", b"1234567891")),  # body changed
    (ZOOM_SECRET, "1626230692", ZOOM_BODY),                                        # timestamp changed
])
def test_zoom_signature_mutations_refused(secret, timestamp, body):
    error = _refused(lambda: auth.require_hmac("x-zm-signature", ZOOM_SIGNATURE,
                                               zoom.signature(secret, timestamp, body)))
    assert error.status == 403 and "x-zm-signature" in error.message


def test_zoom_url_validation_vectors():
    assert zoom.url_validation_response(RFC_KEY, RFC_DATA.decode())["encryptedToken"] == RFC4231_SHA256
    assert zoom.url_validation_response(ZOOM_SECRET, ZOOM_PLAIN_TOKEN) == {
        "plainToken": ZOOM_PLAIN_TOKEN, "encryptedToken": ZOOM_ENCRYPTED_TOKEN}
    assert zoom.url_validation_response("ZOOM_WEBHOOK_SECRET_TOKEn", ZOOM_PLAIN_TOKEN)["encryptedToken"] \
        != ZOOM_ENCRYPTED_TOKEN


# --- SendGrid: ECDSA P-256 / SHA-256 over timestamp + payload ---

def test_sendgrid_sdk_vector_accepted():
    auth.require_sendgrid_signature(SENDGRID_PUBLIC_KEY, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD)


@pytest.mark.parametrize("key, timestamp, payload", [
    (SENDGRID_OTHER_KEY, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD),                          # wrong key
    (SENDGRID_PUBLIC_KEY, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD.replace(b"dropped", b"dropper")),  # body
    (SENDGRID_PUBLIC_KEY, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD.rstrip(b"\r\n")),          # trailing CR LF lost
    (SENDGRID_PUBLIC_KEY, "1600112503", SENDGRID_PAYLOAD),                               # timestamp changed
])
def test_sendgrid_mutations_refused(key, timestamp, payload):
    error = _refused(lambda: auth.require_sendgrid_signature(key, SENDGRID_SIGNATURE, timestamp, payload))
    assert error.status == 403 and "X-Twilio-Email-Event-Webhook-Signature" in error.message
