"""The gold view list is in dependency order, and a list that is not is refused."""

from __future__ import annotations

import pytest

from jobs.gold import GOLD_VIEWS, GoldView, check_order


def test_gold_views_are_in_dependency_order() -> None:
    check_order(GOLD_VIEWS)
    assert len({v.name for v in GOLD_VIEWS}) == len(GOLD_VIEWS)


def test_a_view_before_its_input_is_refused() -> None:
    views = (GoldView("gold.platinum", depends_on=("gold.base",)), GoldView("gold.base"))
    with pytest.raises(ValueError, match=r"gold.platinum is listed before its inputs \['gold.base'\]"):
        check_order(views)
