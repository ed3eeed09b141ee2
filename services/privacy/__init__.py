"""Data requests about a person: export, erase, suppress, retention (docs/privacy.md)."""
