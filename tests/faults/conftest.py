from tests.services import database, kafka_bootstrap, postgres, settings  # noqa: F401
