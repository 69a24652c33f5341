"""Admission by latency budget, by itself: one batch before a rate is known, then as many as the measured drain
rate answers within the budget, never more than the cap; Retry-After from that rate."""

from __future__ import annotations

import pytest

from serve.admission import Admission
from serve.errors import Overloaded


def admit(admission: Admission, count: int) -> int:
    """Admit up to `count` requests; how many got in."""
    for n in range(count):
        try:
            admission.enter()
        except Overloaded:
            return n
    return count


def test_before_any_answer_one_batch_is_admitted():
    admission = Admission("m", budget_s=2.0, max_in_flight=32, first_batch=4)
    assert admit(admission, 10) == 4
    with pytest.raises(Overloaded) as info:
        admission.check()
    assert info.value.status == 503 and info.value.code == "overloaded"
    assert info.value.headers["Retry-After"] == "1" and "budget 2 s" in info.value.detail


def test_the_measured_rate_sets_how_many_fit_in_the_budget():
    admission = Admission("m", budget_s=2.0, max_in_flight=32, first_batch=1)
    admission.enter()
    admission.leave(0.5, answered=True)  # alone: a request costs 0.5 s
    assert admission.cost_s == 0.5
    assert admit(admission, 10) == 4  # the 4th is answered after (3 + 1) * 0.5 = 2.0 s: in; the 5th 2.5 s: out
    with pytest.raises(Overloaded) as info:
        admission.check()
    assert info.value.headers["Retry-After"] == "2"  # the 4 ahead drain in 4 * 0.5 s


def test_the_cap_holds_whatever_the_rate():
    admission = Admission("m", budget_s=100.0, max_in_flight=2, first_batch=1)
    admission.enter()
    admission.leave(0.001, answered=True)
    assert admit(admission, 10) == 2


def test_errors_on_bad_input_teach_no_rate():
    admission = Admission("m", budget_s=2.0, max_in_flight=32, first_batch=1)
    admission.enter()
    admission.leave(0.0001, answered=False)
    assert admission.cost_s is None and admission.in_flight == 0
