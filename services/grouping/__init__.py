"""Grouping: person events -> accounts -> opportunities with buying groups (issue 4)."""
