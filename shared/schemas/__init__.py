"""Versioned message schemas. Example messages live in shared/examples/ and are checked by tests."""
