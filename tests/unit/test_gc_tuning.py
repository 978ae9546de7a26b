"""A long-lived process freezes what start-up made and collects its young objects less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from alecton import gc_tuning


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_tune_freezes_what_exists_and_raises_only_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    made_at_start = [{"kept": i} for i in range(100)]
    gc_tuning.tune()
    assert gc.get_freeze_count() >= len(made_at_start)
    assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, middle, old)
