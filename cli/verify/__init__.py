"""Is a Scout deployment healthy and complete? One module per family of checks, each judged by a pure function.

Example::

    results = run_checks(Settings(), Expected(job_intervals_s={"gold-refresh": 10.0}, gold_views=(...)))
    exit_code(results)      # 1 when any check failed

Families: ``database`` (reachable, migrations, roles and grants), ``kafka`` (topics, consumer group and lag),
``stages`` (silver backlog, gold freshness), ``scheduler`` (jobs recently run), ``alerts`` (no critical).
"""

from cli.verify.model import Expected, Result
from cli.verify.report import exit_code, render
from cli.verify.runner import run_checks

__all__ = ["Expected", "Result", "exit_code", "render", "run_checks"]
