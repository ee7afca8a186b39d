from tests.services import (  # noqa: F401
    database,
    kafka_bootstrap,
    kafka_cluster,
    own_broker,
    postgres,
    settings,
)
