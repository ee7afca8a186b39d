"""The ``scout`` command line and its tools, on top of every other package: the commands (``main``), the
deployment checks (``verify``), the benchmarks (``bench``), the embedded services for ``scout up`` and the
tests (``services``), UAT (``uat``) and the schema dump. Nothing below imports it."""
