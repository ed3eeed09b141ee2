"""Personal data: pseudonyms and per-identifier keys (crypto-shredding), docs/privacy.md."""
