"""Scout core: settings, the event contract, database access and error classification.

The core imports none of the stage packages (ingest_api, streams, jobs, quality, simulator);
they import it. The ``scout`` CLI (scout.cli) is the composition root on top of everything.
"""

__version__ = "0.1.0"
