"""A record batch's acks are observed in one write: the same samples as one ``observe`` per message."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from observability.metrics import LATENCY_BUCKETS, observe_many


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    (metric,) = histogram.collect()
    return {(s.name, s.labels.get("le", "")): s.value for s in metric.samples if not s.name.endswith("_created")}


@pytest.mark.parametrize("amount", [0.0, 0.0004, 0.001, 0.0031, 0.7, 10.0, 42.0])
@pytest.mark.parametrize("count", [0, 1, 2, 500])
def test_observe_many_leaves_the_samples_of_as_many_observe_calls(amount: float, count: int) -> None:
    one_by_one = Histogram("one", "x", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    at_once = Histogram("many", "x", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for _ in range(count):
        one_by_one.observe(amount)
    observe_many(at_once, amount, count)
    expected = {(name.replace("one", "many"), le): v for (name, le), v in _samples(one_by_one).items()}
    assert _samples(at_once) == pytest.approx(expected)


def test_observe_many_needs_the_labelled_child_as_observe_does() -> None:
    labelled = Histogram("labelled", "x", ["endpoint"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="missing label values"):
        observe_many(labelled, 0.1, 3)
    observe_many(labelled.labels("batch"), 0.1, 3)
