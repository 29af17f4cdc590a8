"""The dashboard's pure parts: the timeline of a run's attempts, the flow graph, per-step
figures, filters and cursors, and the redirect after login."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import QueryParams

from orch_serv.api.ui import figures, graph, timeline
from orch_serv.api.ui.auth import safe_next
from orch_serv.api.ui.filters import RunFilter, decode_cursor, encode_cursor, parse_time
from orch_serv.api.ui.run import other_details, traceback_of
from orch_serv.api.ui.session import UiError
from orch_serv.api.ui.templating import duration, iso
from orch_serv.constants import EventKind, EventStatus, RunState
from orch_serv.flow.policy import RetryPolicy
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import Event, RunRecord

SPEC = FlowSpec(
    name="ship",
    steps=(
        StepSpec(
            index=0,
            name="reserve",
            block="r",
            service="work",
            command="reserve",
            compensate="release",
        ),
        StepSpec(index=1, name="pack", block="p", service="work", command="pack"),
        StepSpec(
            index=2,
            name="send",
            block="s",
            service="work",
            command="send",
            retry=RetryPolicy(max_attempts=3),
            compensate="recall",
        ),
    ),
)
BOOM = ErrorInfo(type="ValueError", message="boom", details={"traceback": ["a\n", "b\n"]})


def _record(state: RunState = RunState.FAILED, finished: float | None = 10.0) -> RunRecord:
    return RunRecord(
        "r1", "flow", "ship", "v1", state, 2, "send", 2, 3, 0.0, 10.0, finished_at=finished
    )


def _event(kind: EventKind, t: float, step: int, attempt: int = 1, **more: Any) -> Event:
    return Event(
        kind=kind, time=t, step=step, step_name=SPEC.steps[step].name, attempt=attempt, **more
    )


HISTORY = [
    Event(kind=EventKind.RUN_CREATED, time=0.0),
    _event(EventKind.STEP_DISPATCHED, 1.0, 0),
    _event(EventKind.STEP_STARTED, 1.5, 0),
    _event(EventKind.STEP_COMPLETED, 2.0, 0, duration_ms=500.0),
    _event(EventKind.STEP_DISPATCHED, 2.0, 2),
    _event(EventKind.STEP_COMPLETED, 4.0, 2, duration_ms=1000.0),  # no start notice
    _event(EventKind.STEP_COMPLETED, 4.5, 2, duration_ms=1.0),  # a late duplicate
    _event(EventKind.STEP_DISPATCHED, 5.0, 1),
    _event(EventKind.STEP_FAILED, 6.0, 1, status=EventStatus.FAILED, error=BOOM),
    _event(EventKind.RETRY_SCHEDULED, 6.0, 1, 2, body={"delay": 0.5, "after_attempt": 1}),
    _event(EventKind.STEP_DISPATCHED, 6.5, 1, 2),
    _event(EventKind.STEP_TIMED_OUT, 8.0, 1, 2, error=ErrorInfo(type="Timeout", message="t")),
    _event(EventKind.COMPENSATION_DISPATCHED, 8.5, 0),
]


def test_attempts_follow_the_events() -> None:
    items = timeline.attempts(HISTORY, _record())
    assert [i.label for i in items] == [
        "1/3 reserve #1",
        "3/3 send #1",
        "2/3 pack #1",
        "2/3 pack #2",
        "undo 1/3 reserve #1",
    ]
    reserve, send, pack1, pack2, undo = items
    assert (reserve.queue_wait, reserve.execution, reserve.outcome) == (0.5, 0.5, "completed")
    assert send.started == 3.0 and send.ended == 4.0  # from the reply's duration
    assert pack1.outcome == "failed" and pack1.error == "ValueError: boom"
    assert pack1.retry_delay == 0.5
    assert pack2.timed_out and pack2.error == "Timeout: t"
    assert undo.outcome == "stopped (FAILED)" and undo.ended == 10.0  # the run ended


def test_attempts_of_a_live_run_stay_open() -> None:
    items = timeline.attempts(HISTORY[:2], _record(RunState.RUNNING, None))
    assert items[0].outcome == "in progress" and items[0].ended is None


def test_layout_places_queue_wait_before_execution() -> None:
    items = timeline.attempts(HISTORY, _record())
    drawn = timeline.layout(items, _record(), now=99.0)
    assert len(drawn.bars) == 5 and len(drawn.ticks) == 5 and drawn.span == 10.0
    first = drawn.bars[0]
    assert first.queue_x < first.exec_x == pytest.approx(first.queue_x + first.queue_w)
    assert first.mark == "completed" and drawn.bars[2].mark == "failed, retry in 0.5 s"
    assert drawn.ticks[-1].text == "+10.0 s"
    assert timeline.layout([], _record(), now=1.0).bars == []


def test_graph_links_steps_and_compensations() -> None:
    drawn = graph.layout(SPEC)
    kinds = [n.kind for n in drawn.nodes]
    assert kinds == ["step", "compensation", "step", "step", "compensation"]
    assert drawn.nodes[3].lines == ("work.send", "retry: 3 attempts")
    labels = [e.label for e in drawn.edges]
    assert labels == ["on failure", "", "", "on failure", "then"]  # recall, then release
    assert drawn.height > 0 and drawn.width > drawn.nodes[1].x


def test_figures_count_attempts_failures_and_percentiles() -> None:
    figures_of = figures.tally(SPEC, [HISTORY, HISTORY[:4]], since=0.5)
    reserve, pack, send = figures_of
    assert (reserve.attempts, reserve.failures, reserve.execution) == (2, 0, [0.5, 0.5])
    assert reserve.queue_wait == [0.5, 0.5] and reserve.failure_rate == 0.0
    assert (pack.attempts, pack.failures, pack.timeouts, pack.failure_rate) == (2, 2, 1, 1.0)
    assert send.p("execution", 0.5) == 1.0 and send.p("queue_wait", 0.5) is None
    assert figures.tally(SPEC, [HISTORY], since=100.0)[0].attempts == 0
    assert figures.percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert figures.percentile([3.0, 1.0, 2.0, 4.0], 0.99) == 4.0
    assert figures.percentile([], 0.5) is None


def test_filters_read_the_query() -> None:
    wanted = RunFilter.parse(
        QueryParams("flow=ship&state=failed&since=2026-12-01T02:00&until=1800000000&limit=100")
    )
    assert wanted.state is RunState.FAILED and wanted.limit == 100
    assert wanted.since == parse_time("2026-12-01T02:00:00Z", "since")
    assert wanted.params() == (
        "flow=ship&state=FAILED&since=2026-12-01T02%3A00&until=1800000000&limit=100"
    )
    assert wanted.query().flow == "ship" and RunFilter.parse(QueryParams("")).after is None
    assert parse_time("2026-12-01T03:00+01:00", "x") == parse_time("2026-12-01T02:00", "x")


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", "soon", "2026-13-01"])
def test_a_bad_time_is_refused(bad: str) -> None:
    with pytest.raises(UiError, match="must be a time"):
        parse_time(bad, "since")


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    assert decode_cursor(encode_cursor((1.5, "run-1"))) == (1.5, "run-1")
    for bad in ("", "!!", encode_cursor((1.0, "x"))[:-3], "WyJhIiwxXQ", "WzEsMl0", "bnVsbA"):
        with pytest.raises(UiError):
            decode_cursor(bad)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, "/runs"),
        ("/health", "/health"),
        ("//evil.example", "/runs"),
        ("https://evil.example", "/runs"),
        ("/\\evil.example", "/runs"),
    ],
)
def test_login_only_returns_to_a_dashboard_path(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_error_traceback_and_details_are_shown_apart() -> None:
    assert traceback_of(BOOM) == "a\nb\n"
    assert other_details(BOOM) is None
    retry = ErrorInfo(type="X", message="m", details={"retry_after": 2, "traceback": "tb"})
    assert traceback_of(retry) == "tb" and other_details(retry) == {"retry_after": 2}
    assert traceback_of(None) is None and traceback_of(ErrorInfo(type="X", message="m")) is None


def test_times_and_durations_read_well() -> None:
    assert iso(0) == "" and iso(1.5) == "1970-01-01 00:00:01.500Z"
    assert [duration(s) for s in (None, 0.25, 12.44, 185, 7380)] == [
        "",
        "250 ms",
        "12.4 s",
        "3 min 5 s",
        "2 h 3 min",
    ]
