"""The --workers supervisor's restart budget is a rate, not a lifetime count."""

from __future__ import annotations

from service_template.supervisor import MAX_RESTARTS, RESTART_WINDOW, RestartBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_restarts_within_the_budget_are_allowed_and_the_next_one_in_the_window_is_not() -> None:
    clock = FakeClock()
    budget = RestartBudget(limit=3, window=60.0, clock=clock)
    assert [budget.spend() for _ in range(3)] == [True, True, True]
    clock.now += 59.0
    assert budget.spend() is False


def test_restarts_spread_over_time_are_allowed_for_ever() -> None:
    clock = FakeClock()
    budget = RestartBudget(clock=clock)
    for _ in range(10 * MAX_RESTARTS):  # a worker that crashes now and then, for days
        assert budget.spend()
        clock.now += RESTART_WINDOW / MAX_RESTARTS + 0.1


def test_the_budget_refills_as_old_restarts_leave_the_window() -> None:
    clock = FakeClock()
    budget = RestartBudget(limit=2, window=10.0, clock=clock)
    assert budget.spend()
    clock.now += 6
    assert budget.spend()
    clock.now += 1
    assert not budget.spend()  # two in the last 10 s
    clock.now += 3  # the first restart is now 10 s old
    assert budget.spend()
    assert not budget.spend()


def test_a_refused_restart_does_not_use_up_the_budget() -> None:
    clock = FakeClock()
    budget = RestartBudget(limit=1, window=5.0, clock=clock)
    assert budget.spend()
    for _ in range(100):
        assert not budget.spend()
    clock.now += 5
    assert budget.spend()
