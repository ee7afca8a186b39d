"""The scheduled jobs' names, importable without the jobs themselves (for the command line's help).

Example::

    JOB_NAMES    # ("gold-refresh", ...); tests check it against jobs.registry.JOBS
"""

JOB_NAMES = ("gold-refresh", "gold-analytics", "product-relink", "retention", "quality-checks",
             "bronze-partitions")
