"""One module per source platform: pure functions from the platform's payload to canonical events.

A new platform is one new module exposing `parse(body) -> list[MapResult]`, where a payload
that does not fit the platform's documented format raises pydantic's ValidationError (the
API answers 422 with the field path) and one that fits but cannot become a canonical event
is returned as Unmapped (it goes to the dead-letter topic with the reason).
"""
