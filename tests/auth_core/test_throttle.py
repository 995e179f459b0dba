"""The per-address failure window, driven with explicit clocks (no sleeping)."""

from __future__ import annotations

import pytest

from auth_core.throttle import FailureWindow


@pytest.mark.parametrize(
    ("failures", "now", "wait"),
    [
        pytest.param([], 0.0, 0.0, id="none"),
        pytest.param([0.0, 1.0], 2.0, 0.0, id="below-limit"),
        pytest.param([0.0, 1.0, 2.0], 2.0, 58.0, id="at-limit"),
        pytest.param([0.0, 1.0, 2.0], 30.0, 30.0, id="waiting"),
        pytest.param([0.0, 1.0, 2.0], 60.5, 0.0, id="oldest-slid-out"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 4.0, 58.0, id="over-limit-keeps-the-last"),
        pytest.param([0.0, 1.0, 2.0], 1000.0, 0.0, id="all-slid-out"),
    ],
)
def test_blocked(failures: list[float], now: float, wait: float) -> None:
    window = FailureWindow(limit=3, window=60.0)
    for at in failures:
        window.fail("198.51.100.1", now=at)
    assert window.blocked("198.51.100.1", now=now) == pytest.approx(wait)
    assert window.blocked("198.51.100.2", now=now) == 0.0


def test_forget_lifts_the_block() -> None:
    window = FailureWindow(limit=2, window=60.0)
    window.fail("a", now=0.0)
    window.fail("a", now=0.0)
    assert window.blocked("a", now=1.0) > 0
    window.forget("a")
    window.forget("never-seen")
    assert window.blocked("a", now=1.0) == 0.0


def test_keys_are_bounded() -> None:
    window = FailureWindow(limit=1, window=60.0, max_keys=3)
    for number in range(10):
        window.fail(f"k{number}", now=0.0)
    assert len(window._failures) <= 3
    assert window.blocked("k9", now=0.0) > 0
