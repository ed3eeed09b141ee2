"""The main job: sample markets in the platforms' own formats, sent through the ingest API."""
