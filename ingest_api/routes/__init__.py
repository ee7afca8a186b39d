"""HTTP routes of the ingest API; each module is thin and delegates to ingest_api.service."""
