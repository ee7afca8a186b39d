from tests.services import database, kafka_bootstrap, own_broker, postgres, settings  # noqa: F401
