"""The scheduler's pure core in virtual time: debounce, coalescing, coverage, rate and answers."""
import pytest

from bridge import platform as answers
from bridge.scheduler import (Call, Cover, PendingIntent, Process, SiteState, Wait, after_call, coalesce,
                              decide, includes)

MIN = 300.0


def intent(id=1, action="import", target=None, first=0.0, last=None, quiet=30.0, max_wait=300.0, **kw):
    return PendingIntent(id, action, target, first, first if last is None else last, quiet, max_wait, **kw)


def only(decisions, kind):
    found = [d for d in decisions if isinstance(d, kind)]
    assert len(found) == 1, decisions
    return found[0]


# ---- debounce -------------------------------------------------------------------------------

def test_single_event_fires_after_quiet():
    assert decide(29.9, SiteState(), [intent()], [], MIN) == [Wait(30.0)]
    assert decide(30.0, SiteState(), [intent()], [], MIN) == [Call("import", None, (1,))]


def test_later_events_push_quiet_forward():
    assert decide(40.0, SiteState(), [intent(first=0, last=20)], [], MIN) == [Wait(50.0)]


def test_quiet_never_passes_max_wait():
    busy = intent(first=0, last=290)          # events kept coming every few seconds
    assert decide(299.0, SiteState(), [busy], [], MIN) == [Wait(300.0)]
    assert isinstance(decide(300.0, SiteState(), [busy], [], MIN)[-1], Call)


def test_nothing_pending_waits_for_nothing():
    assert decide(10.0, SiteState(), [], [], MIN) == [Wait(None)]


# ---- rate and in-flight ---------------------------------------------------------------------

def test_min_interval_after_last_call():
    site = SiteState(last_call_at=100.0)
    assert decide(200.0, site, [intent(first=150)], [], MIN) == [Wait(400.0)]
    assert decide(400.0, site, [intent(first=150)], [], MIN)[-1] == Call("import", None, (1,))


def test_platform_retry_after_is_respected():
    site = SiteState(next_allowed_at=500.0)
    assert decide(100.0, site, [intent()], [], MIN) == [Wait(500.0)]


def test_no_second_call_while_one_is_in_flight():
    assert decide(1000.0, SiteState(in_flight=True), [intent()], [], MIN) == [Wait(None)]


def test_intent_not_before_delays_the_call():
    assert decide(100.0, SiteState(), [intent(not_before=105.0)], [], MIN) == [Wait(105.0)]


# ---- coalescing -----------------------------------------------------------------------------

@pytest.mark.parametrize("actions, expected", [
    ([("all", None), ("import", None), ("export", 7)], [("all", None)]),
    ([("import", None), ("export-all", None)], [("all", None)]),
    ([("export-all", None), ("export", 7), ("channel", 9)], [("export-all", None)]),
    ([("import", None), ("export", 7)], [("import", None), ("export", 7)]),
    ([("export", 7), ("export", 8)], [("export", 7), ("export", 8)]),
    ([("import", None), ("export-all", None), ("channel", 3)], [("all", None)]),
])
def test_coalescing_rules(actions, expected):
    intents = [intent(i, a, t) for i, (a, t) in enumerate(actions, 1)]
    assert sorted((a, t) for a, t, _ in coalesce(intents)) == sorted(expected)


def test_coalesced_call_carries_every_intent():
    pending = [intent(1, "import"), intent(2, "export-all"), intent(3, "export", 5)]
    assert decide(30.0, SiteState(), pending, [], MIN) == [Call("all", None, (1, 2, 3))]


def test_separate_calls_go_one_at_a_time_earliest_first():
    pending = [intent(1, "export", 5, first=10), intent(2, "import", first=0)]
    assert decide(100.0, SiteState(), pending, [], MIN) == [Call("import", None, (2,))]


def test_group_due_uses_earliest_max_wait_and_latest_quiet():
    pending = [intent(1, "import", first=0, last=0), intent(2, "export-all", first=100, last=100)]
    assert decide(110.0, SiteState(), pending, [], MIN) == [Wait(130.0)]


@pytest.mark.parametrize("outer, inner, expected", [
    (("all", None), ("export", 3), True),
    (("export-all", None), ("channel", 3), True),
    (("export-all", None), ("import", None), False),
    (("import", None), ("all", None), False),
    (("export", 3), ("export", 3), True),
    (("export", 3), ("export", 4), False),
])
def test_includes(outer, inner, expected):
    assert includes(*outer, *inner) is expected


# ---- coverage -------------------------------------------------------------------------------

def test_intent_covered_by_process_seen_queued_after_its_last_event():
    queued = Process("p1", "all", None, "queued", last_seen_queued_at=50.0)
    decisions = decide(60.0, SiteState(last_call_at=0.0), [intent(first=40, last=49)], [queued], MIN)
    assert decisions == [Cover((1,), "p1"), Wait(None)]


def test_event_after_last_queued_sighting_is_not_covered():
    running = Process("p1", "all", None, "running", last_seen_queued_at=50.0)
    decisions = decide(400.0, SiteState(last_call_at=0.0), [intent(first=51)], [running], MIN)
    assert decisions == [Call("import", None, (1,))]


def test_narrower_process_does_not_cover():
    queued = Process("p1", "import", None, "queued", last_seen_queued_at=50.0)
    assert not any(isinstance(d, Cover) for d in decide(60.0, SiteState(), [intent(action="all")], [queued], MIN))


# ---- answers --------------------------------------------------------------------------------

CALL = Call("import", None, (1,))


def test_accepted_fires_and_opens_the_rate_window():
    result = after_call(10.0, 11.0, CALL, answers.Accepted("p9"), [intent()], [], MIN)
    assert (result.fate, result.process_id, result.last_call_at, result.record_process) == ("fired", "p9", 10.0, True)


def test_rate_limited_waits_for_retry_after():
    result = after_call(10.0, 11.0, CALL, answers.RateLimited(500.0, message="Too many attempts."), [intent()], [], MIN)
    assert (result.fate, result.not_before, result.next_allowed_at) == ("pending", 500.0, 500.0)


def test_rate_limited_without_header_waits_min_interval():
    result = after_call(10.0, 11.0, CALL, answers.RateLimited(None, message="Too many attempts."), [intent()], [], MIN)
    assert result.not_before == 11.0 + MIN


def test_rate_limited_after_lost_answer_means_the_first_call_went_through():
    lost = intent(unknown_outcome=True, attempts=1)
    result = after_call(400.0, 401.0, CALL, answers.RateLimited(700.0, message="Too many attempts."), [lost], [], MIN)
    assert result.fate == "fired"


def test_queue_full_with_our_queued_covering_process_is_covered():
    queued = Process("p1", "all", None, "queued", 5.0)
    result = after_call(10.0, 11.0, CALL, answers.QueueFull(message="queue"), [intent()], [queued], MIN)
    assert (result.fate, result.process_id) == ("covered", "p1")


def test_queue_full_otherwise_retries_later():
    result = after_call(10.0, 11.0, CALL, answers.QueueFull(message="queue"), [intent()], [], MIN)
    assert (result.fate, result.not_before) == ("pending", 11.0 + MIN)


def test_lock_retries_in_seconds_without_touching_the_rate_window():
    result = after_call(10.0, 11.0, CALL, answers.Locked(message="lock"), [intent()], [], MIN)
    assert result.fate == "pending" and result.not_before < 30 and result.last_call_at is None


def test_job_server_error_retries_once_then_fails():
    first = after_call(10.0, 11.0, CALL, answers.JobServerError(message="job server"), [intent()], [], MIN)
    assert first.fate == "pending" and first.job_server_retried
    second = after_call(50.0, 51.0, CALL, answers.JobServerError(message="job server"),
                        [intent(job_server_retried=True)], [], MIN)
    assert second.fate == "failed" and "job server" in second.detail


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_permanent_refusals_fail_without_retry(status):
    result = after_call(10.0, 11.0, CALL, answers.Rejected(status, message="no rights"), [intent()], [], MIN)
    assert result.fate == "failed" and str(status) in result.detail


def test_unknown_outcome_retries_after_min_interval_counting_the_call():
    result = after_call(10.0, 40.0, CALL, answers.Unknown(message="read timeout"), [intent()], [], MIN)
    assert (result.fate, result.last_call_at, result.not_before, result.unknown_outcome) == \
        ("pending", 10.0, 10.0 + MIN, True)


def test_unknown_outcome_gives_up_after_many_attempts():
    result = after_call(10.0, 40.0, CALL, answers.Unknown(message="timeout"), [intent(attempts=20)], [], MIN)
    assert result.fate == "failed"
