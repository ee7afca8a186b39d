"""Bulk CSV upload of invoice history: column mapping, jobs, publishing through the ingest publisher."""
