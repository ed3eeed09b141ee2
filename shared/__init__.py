"""The project's own shared package: message schemas, the codec, settings and topics."""
