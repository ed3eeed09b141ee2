"""What the ingest OpenAPI says about authentication, and its self-hosted /docs.

The security schemes are the ones services/ingest/auth.py checks: an API key per source
(X-API-Key, a Bearer token, or HTTP Basic with the key as user or password), and the
platforms' own signatures where they sign (Segment's X-Signature when a shared secret is
set, SendGrid's signed Event Webhook when a public key is set, Zoom's x-zm-signature always),
and the key in the webhook URL for the Russian platforms (services/ingest/sources_ru.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from shared.apidocs import declare_security, mount_docs

SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key of the source (INGEST_API_KEYS)."},
    "bearer": {"type": "http", "scheme": "bearer", "description": "The same API key as a Bearer token."},
    "basic": {"type": "http", "scheme": "basic",
              "description": "The API key as the user name (Segment's write key) or the password (SendGrid)."},
    "segmentSignature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                         "description": "HMAC-SHA1 of the body with INGEST_SEGMENT_SHARED_SECRET, hex; "
                                        "required instead of a key when that secret is set."},
    "sendgridSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Email-Event-Webhook-Signature",
                          "description": "ECDSA P-256 over X-Twilio-Email-Event-Webhook-Timestamp + body, "
                                         "checked with INGEST_SENDGRID_PUBLIC_KEY; required instead of a key "
                                         "when that key is set."},
    "urlKey": {"type": "apiKey", "in": "query", "name": "key",
               "description": "The source's API key in the webhook URL (?key=...), for platforms that "
                              "cannot set headers (Tilda, MTS Link, Calltouch, Roistat)."},
    "mtslinkSignature": {"type": "apiKey", "in": "header", "name": "X-Webhook-Signature",
                         "description": "MTS Link's HMAC of the body with INGEST_MTSLINK_WEBHOOK_SECRET; "
                                        "required instead of a key when that secret is set."},
    "zoomSignature": {"type": "apiKey", "in": "header", "name": "x-zm-signature",
                      "description": "v0=HMAC-SHA256 of v0:<x-zm-request-timestamp>:<body> with "
                                     "INGEST_ZOOM_SECRET_TOKEN."},
}
KEY = [{"apiKey": []}, {"bearer": []}, {"basic": []}]
PER_PATH = {
    "/v1/events": KEY,
    "/v1/sources/segment": [*KEY, {"segmentSignature": []}],
    "/v1/sources/sendgrid": [*KEY, {"sendgridSignature": []}],
    "/v1/sources/zoom": [{"zoomSignature": []}],
    "/v1/sources/tilda": [{"urlKey": []}, *KEY],
    "/v1/sources/mtslink": [{"urlKey": []}, *KEY, {"mtslinkSignature": []}],
    "/v1/sources/calltouch": [{"urlKey": []}, *KEY],
    "/v1/sources/roistat": [{"urlKey": []}, *KEY],
    # Unisender Go authenticates in the body (its "auth" field: MD5 keyed by the API key), which
    # OpenAPI cannot express as a scheme: its operation says so in its summary.
    "/v1/sources/unisender": [],
}


def document(app: FastAPI) -> None:
    """Declare the security schemes and serve /docs from the project's own assets."""
    declare_security(app, SCHEMES, PER_PATH)
    mount_docs(app)
