"""The HTTP API over published recommendations and cold-start inference (never retrains)."""
