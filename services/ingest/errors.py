"""Every error the API answers is JSON: {"error", "message", "errors": [{"field", "message"}]}."""

from __future__ import annotations

from pydantic import ValidationError


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str,
                 errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.errors = errors or []
        self.headers = headers

    def body(self) -> dict:
        return {"error": self.error, "message": self.message, "errors": self.errors}


# Tags of discriminated unions that pydantic puts into error locations; a client knows the
# fields of its payload, not our union tags, so they are left out of the field path.
UNION_TAGS = frozenset({"touch", "identity", "page", "screen", "track", "identify", "group"})


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors()[:50]:
        path = ".".join(str(p) for p in err["loc"] if p not in UNION_TAGS)
        out.append({"field": f"{prefix}{path}" if path else prefix.rstrip(".") or "(body)", "message": err["msg"]})
    return out


def invalid(errors: list[dict[str, str]]) -> ApiError:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return ApiError(422, "validation_error", f"the payload is not valid: {summary}", errors)
