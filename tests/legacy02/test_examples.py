"""The 0.2 examples (flows/legacy02.py, services_examples/legacy02/) run in process: as 0.2
programs, and through the bridge on the embedded backends. tests/integration/
test_legacy02_examples.py runs them over the real RabbitMQ and Redis."""

from __future__ import annotations

import pytest

from flows import legacy02 as app
from orch_serv import RunState
from orch_serv.legacy02 import wire
from orch_serv.legacy02.bridge import Bridge, result_message
from orch_serv.testing import KitFactory
from services_examples.legacy02 import service as billing
from services_examples.legacy02.messages import Header, Order, OrderMessage
from services_examples.legacy02.stepper import PriceStepper, parse_line, to_cents, total
from tests.conftest import eventually


def order(quantity: int = 3, **header: str) -> OrderMessage:
    return OrderMessage(
        body=Order(order_id="o-1", item="tea", quantity=quantity, unit_price="2.50"),
        header=Header(**header),
    )


@pytest.fixture(autouse=True)
def _clear() -> None:
    app.AUDIT.clear()
    billing.RECEIPTS.clear()


def test_stepper_example() -> None:
    assert parse_line("3 x 2.50") == (3, "2.50")
    assert to_cents(3, "2.50") == (3, 250)
    assert total(3, 250) == 750
    assert PriceStepper().step_by_step("3 x 2.50") == 712  # 5 % off


async def test_orchestrator_example_in_process() -> None:
    message = order(flow="order")
    calls = 0
    while message.get_source() != "notify customer":
        assert await app.orchestrator.handle(message) is None
        calls += 1
    assert calls == 3
    assert message.body.trail == ["reserved", "priced", "notified"]
    assert message.body.total_cents == 712
    assert app.AUDIT == ["o-1"]


async def test_orchestrator_example_pre_hook_stops_empty_orders() -> None:
    message = order(0, flow="order")
    assert await app.orchestrator.handle(message) is None
    assert message.get_source() is None and message.body.trail == []


async def test_orchestrator_example_target_and_default() -> None:
    target = order(target="price order")
    assert await app.orchestrator.handle(target) is None
    assert target.body.trail == ["priced"]
    unknown = order(flow="no such flow")  # the default flow, "order"
    assert await app.orchestrator.handle(unknown) is None
    assert unknown.body.trail == ["reserved"]


def test_sync_orchestrator_example_in_process() -> None:
    message = order(flow="shipping")
    assert app.sync_orchestrator.handle(message) is None
    assert app.sync_orchestrator.handle(message, is_force_return=True) is message
    assert message.body.trail == ["address checked", "shipped"]


async def test_service_example_in_process() -> None:
    service = billing.BillingService()
    message = order(command="charge")
    assert await service.handle(message) is None
    assert message.body.total_cents == 712
    assert billing.RECEIPTS == [{"order_id": "o-1", "cents": 712, "trail": ["charged"]}]
    message.header.command = "refund"
    assert await service.handle(message) is None
    assert message.body.total_cents == 0


async def test_examples_through_the_bridge(orch_serv_kit: KitFactory) -> None:
    bridge = Bridge(app.orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await bridge.start(kit.running, order(flow="order")))
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert isinstance(result, OrderMessage)
    assert result.body.trail == ["reserved", "priced", "notified"]
    assert app.AUDIT == ["o-1"]


async def _receipt() -> bool:
    return bool(billing.RECEIPTS)


async def test_billing_service_hosted(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app.billing)
    record = await kit.wait(await kit.start("billing", wire.dump(order())))
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert result is not None and result.body.trail == ["charged", "refunded"]
    assert result.body.total_cents == 0  # the swap scope carried the charge to the refund
    await eventually(_receipt)  # the post-processor runs after the reply's ack
    assert billing.RECEIPTS == [{"order_id": "o-1", "cents": 712, "trail": ["charged"]}]


def test_cli_loads_0_2_objects() -> None:
    from orch_serv.cli.serve import _orchestrator, _services
    from orch_serv.orchestrator import Orchestrator

    orch = _orchestrator("flows.legacy02:orchestrator")
    assert isinstance(orch, Orchestrator)
    assert orch.get_list_flows() == ["order"]
    assert [s.name for s in _services("flows.legacy02:orchestrator")] == ["orch_serv_02"]
    assert [s.name for s in _services("services_examples.legacy02.service:service")] == [
        "BillingService"
    ]


def test_describe() -> None:
    assert app.describe()["order"] == "reserve stock -> price order -> notify customer -> end"


async def test_plain_json_body_with_annotated_blocks(orch_serv_kit: KitFactory) -> None:
    # what `orch-serv start order '{"body": ..., "header": ...}'` sends: no class name, so
    # each side validates it against the class the block's `process` is annotated with
    bridge = Bridge(app.orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await kit.start("order", order(flow="order").model_dump(mode="json")))
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert result is not None and result.body.trail == ["reserved", "priced", "notified"]
