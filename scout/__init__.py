"""Scout core: settings, the event contract and its invoice CSV form, database access, error classification,
migrations.

The core imports no other package of the project; every other package imports it. Above it sit observability,
the simulator, the stages (ingest_api, streams, jobs, quality) and, on top, the command line (``cli``).
"""

__version__ = "0.1.0"
