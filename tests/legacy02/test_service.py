"""1.5: the 0.2 service layer (``Service``/``AsyncService`` without a name)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from orch_serv.exc import (
    DoublePostProcessFunctionDeclaredError,
    EmptyCommandsException,
    IncorrectDefaultCommand,
    NotUniqueCommandError,
    ServiceBlockException,
    ServiceBuilderException,
)
from orch_serv.msg import BaseOrchServMsg
from orch_serv.service import (
    AsyncCommandHandlerPostProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
    AsyncDefaultPostProcessStrategy,
    AsyncService,
    CommandHandlerPostProcessStrategy,
    CommandHandlerProcessStrategy,
    DefaultPostProcessStrategy,
    Service,
    ServiceBlock,
    ServiceBuilder,
    ServiceCommand,
)
from tests.legacy02.models import Body, Header, Msg, msg

LOG: list[Any] = []


@pytest.fixture(autouse=True)
def _clear_log() -> None:
    LOG.clear()


class P1(CommandHandlerProcessStrategy):
    target_command = "p1"

    def process(self, msg: Msg) -> Msg:
        LOG.append(1)
        return msg


class P2(CommandHandlerProcessStrategy):
    target_command = "p2"

    def process(self, msg: Msg) -> tuple[Msg, dict[str, int]]:
        LOG.append(2)
        return msg, {"extra": 2}


class P3(CommandHandlerProcessStrategy):
    target_command = "p3"

    def process(self, msg: Msg) -> None:
        LOG.append(3)


class Failing(CommandHandlerProcessStrategy):
    target_command = "fail"

    def process(self, msg: Msg) -> Msg:
        raise ValueError("failed")


class Post4(CommandHandlerPostProcessStrategy):
    def post_process(self, msg: Any, additional_data: Any = None) -> None:
        LOG.append((4, type(msg).__name__, additional_data))


class Post5(CommandHandlerPostProcessStrategy):
    def post_process(self, msg: Any, additional_data: Any = None) -> None:
        LOG.append((5, type(msg).__name__, additional_data))


class AP(AsyncCommandHandlerProcessStrategy):
    target_command = "ap"

    async def process(self, msg: Msg) -> Msg:
        LOG.append("ap")
        return msg


class APost(AsyncCommandHandlerPostProcessStrategy):
    async def post_process(self, msg: Any, additional_data: Any = None) -> None:
        LOG.append(("apost", type(msg).__name__))


class Sync(Service):
    service_commands = ServiceBuilder(
        ServiceBlock(P1, Post4), ServiceBlock(P2), ServiceBlock(P3, Post4), Post5
    )


# -- handlers ----------------------------------------------------------------------------------
def test_set_logger() -> None:
    handler = P1()
    default = handler.logger
    handler.set_logger(None)
    assert handler.logger is default
    logger = logging.getLogger("x")
    handler.set_logger(logger)
    assert handler.logger is logger
    with pytest.raises(TypeError) as info:
        handler.set_logger("logger")
    assert str(info.value) == "Type must be logger but not logger"


def test_set_service_instance() -> None:
    with pytest.raises(TypeError, match="Type must be Service but not"):
        P1().set_service_instance(object())
    handler = P1()
    handler.set_service_instance(Sync())
    assert handler.set_to_swap_scope("k", 1) is True


def test_swap_scope_without_service() -> None:
    handler = P1()
    assert handler.set_to_swap_scope("k", 1) is False
    assert handler.get_from_swap_scope("k") is None
    assert handler.del_from_swap_scope("k") is False


def test_target_command_not_overridden() -> None:
    class NoTarget(CommandHandlerProcessStrategy):
        def process(self, msg: Msg) -> Msg:
            return msg

    with pytest.raises(NotImplementedError):
        _ = NoTarget().target_command


def test_strategies_are_distinct_classes() -> None:
    classes = {
        CommandHandlerProcessStrategy,
        AsyncCommandHandlerProcessStrategy,
        CommandHandlerPostProcessStrategy,
        AsyncCommandHandlerPostProcessStrategy,
    }
    assert len(classes) == 4
    assert issubclass(DefaultPostProcessStrategy, CommandHandlerPostProcessStrategy)
    assert issubclass(AsyncDefaultPostProcessStrategy, AsyncCommandHandlerPostProcessStrategy)


# -- ServiceBlock / ServiceBuilder -------------------------------------------------------------
def test_service_block_classes_instances_and_no_post() -> None:
    block = ServiceBlock(P1(), Post4)
    assert isinstance(block.processor, P1) and isinstance(block.post_processor, Post4)
    assert ServiceBlock(P1).post_processor is None


def test_service_block_wrong_types() -> None:
    with pytest.raises(ServiceBlockException) as info:
        ServiceBlock(1)
    assert info.value.message == (
        "`process` object must be of type `CommandHandlerProcessStrategy` or "
        "`AsyncCommandHandlerProcessStrategy` and not <class 'int'>"
    )
    with pytest.raises(ServiceBlockException, match="`post_process` object must be of type"):
        ServiceBlock(P1, P2)  # a processor where the post-processor goes
    with pytest.raises(ServiceBlockException, match=r"and not <class 'tests\.legacy02"):
        ServiceBlock(Post4)  # a post-processor where the processor goes


def test_builder_positional_post_processor_is_the_default() -> None:
    assert isinstance(ServiceBuilder(ServiceBlock(P1), Post5).default_post, Post5)


def test_builder_two_default_post_processors() -> None:
    with pytest.raises(DoublePostProcessFunctionDeclaredError) as info:
        ServiceBuilder(ServiceBlock(P1), Post5, default_post_process=Post4)
    assert info.value.message == "Several postprocessors specified"


def test_builder_non_block() -> None:
    with pytest.raises(TypeError) as info:
        ServiceBuilder(ServiceBlock(P1), P2)
    assert str(info.value) == (f"block must be instance class `ServiceBlock`. Not {P2}")


def test_builder_without_blocks() -> None:
    with pytest.raises(EmptyCommandsException) as info:
        ServiceBuilder()
    assert info.value.message == "Empty list of commands for service operation"


def test_builder_default_post_of_wrong_type() -> None:
    with pytest.raises(ServiceBlockException):
        ServiceBuilder(ServiceBlock(P1), default_post_process=P2)


def test_build_gives_every_command_a_post_processor() -> None:
    commands = ServiceBuilder(ServiceBlock(P1), ServiceBlock(P2, Post4)).build(Sync(), None)
    assert set(commands) == {"p1", "p2"}
    assert all(isinstance(c, ServiceCommand) for c in commands.values())
    assert isinstance(commands["p1"].post_processor, DefaultPostProcessStrategy)
    assert isinstance(commands["p2"].post_processor, Post4)


def test_duplicate_command() -> None:
    class Again(P1):
        pass

    with pytest.raises(NotUniqueCommandError) as info:
        Service(ServiceBuilder(ServiceBlock(P1), ServiceBlock(Again)))
    assert info.value.message == "Command `p1` is not unique for current service"


# -- Service construction ----------------------------------------------------------------------
def test_builder_from_argument_or_class_attribute() -> None:
    assert Service(service_commands=ServiceBuilder(ServiceBlock(P1))).commands == ["p1"]
    assert Sync().commands == ["p1", "p2", "p3"]


def test_no_builder() -> None:
    with pytest.raises(NotImplementedError):
        Service()


def test_builder_of_wrong_type() -> None:
    with pytest.raises(ServiceBuilderException) as info:
        Service(service_commands=[ServiceBlock(P1)])  # type: ignore[arg-type]
    assert info.value.message == (
        "Variable `service_builder` must be a ServiceBuilder and not <class 'list'>"
    )


def test_unknown_default_command_names_it() -> None:
    with pytest.raises(IncorrectDefaultCommand) as info:
        Service(ServiceBuilder(ServiceBlock(P1)), default_command="nope")
    # 0.2 printed `None` instead of the command (fixed)
    assert info.value.message == (
        "The `nope` command which is the default command is not among the valid commands : ['p1']"
    )


def test_mode_mismatch() -> None:
    with pytest.raises(TypeError) as info:
        Service(ServiceBuilder(ServiceBlock(AP)))
    assert str(info.value) == (
        "Incorrect type `processor` of command `ap`. Must be a `CommandHandlerProcessStrategy` "
        "and not `AP`"
    )
    with pytest.raises(TypeError, match="Incorrect type `processor` of command `p1`"):
        AsyncService(ServiceBuilder(ServiceBlock(P1)))
    with pytest.raises(TypeError, match="Incorrect type `post_processor` of command `ap`"):
        AsyncService(ServiceBuilder(ServiceBlock(AP, Post4)))


def test_positional_arguments_in_0_2_order() -> None:
    logger = logging.getLogger("svc")
    service = Service(ServiceBuilder(ServiceBlock(P1), ServiceBlock(Failing)), "p1", logger, False)
    assert service.default_command == "p1"
    assert service.logger is logger
    assert service.is_catch_exceptions is False


def test_hosted_name_is_the_class_name() -> None:
    assert Sync().name == "Sync"
    assert Service(ServiceBuilder(ServiceBlock(P1))).name == "Service"

    class Named(Service):
        service_name = "billing"
        service_commands = ServiceBuilder(ServiceBlock(P1))

    assert Named().name == "billing"


# -- handle ------------------------------------------------------------------------------------
def test_process_and_its_own_post_processor() -> None:
    assert Sync().handle(msg(command="p1")) is None
    assert LOG == [1, (4, "Msg", None)]


def test_default_post_processor_and_additional_data() -> None:
    assert Sync().handle(msg(command="p2")) is None
    assert LOG == [2, (5, "Msg", {"extra": 2})]


def test_process_returning_none_gets_no_post_processing() -> None:
    assert Sync().handle(msg(command="p3")) is None
    assert LOG == [3]


def test_process_returning_the_message_is_not_unpacked() -> None:
    # 0.2 unpacked the two-field model: the post-processor got ('body', ...) (fixed)
    class Three(BaseOrchServMsg[Body, Header]):
        extra: int = 0

        def get_command(self) -> str | None:
            return "p1"

    assert Sync().handle(msg(command="p1")) is None
    assert Sync().handle(Three(body=Body())) is None
    assert LOG == [1, (4, "Msg", None), 1, (4, "Three", None)]


def test_unknown_command_returns_the_message(caplog: pytest.LogCaptureFixture) -> None:
    m = msg(command="nope")
    with caplog.at_level(logging.WARNING):
        assert Sync().handle(m) is m
    assert "Not found command to process message" in caplog.text


def test_errors_are_caught_and_the_message_returned() -> None:
    m = msg(command="fail")
    assert Service(ServiceBuilder(ServiceBlock(Failing))).handle(m) is m


def test_errors_propagate_without_catching() -> None:
    service = Service(ServiceBuilder(ServiceBlock(Failing)), is_catch_exceptions=False)
    with pytest.raises(ValueError, match="failed"):
        service.handle(msg(command="fail"))


def test_default_command_is_used() -> None:
    service = Service(ServiceBuilder(ServiceBlock(P1), ServiceBlock(P3)), default_command="p3")
    assert service.handle(msg(command="unknown")) is None
    assert service.handle(msg()) is None
    assert LOG == [3, 3]


def test_force_return() -> None:
    m = msg(command="p1")
    assert Sync().handle(m, is_force_return=True) is m


class Put(CommandHandlerProcessStrategy):
    target_command = "put"

    def process(self, msg: Msg) -> Msg:
        self.set_to_swap_scope("logger", msg.body.value)  # 0.2 clobbered service.logger
        return msg


class Get(CommandHandlerProcessStrategy):
    target_command = "get"

    def process(self, msg: Msg) -> Msg:
        LOG.append(self.get_from_swap_scope("logger"))
        return msg


class Delete(CommandHandlerProcessStrategy):
    target_command = "delete"

    def process(self, msg: Msg) -> Msg:
        LOG.append(self.del_from_swap_scope("logger"))
        return msg


class Scoped(Service):
    service_commands = ServiceBuilder(ServiceBlock(Put), ServiceBlock(Get), ServiceBlock(Delete))


def test_swap_scope_across_commands() -> None:
    service = Scoped()
    for command in ("put", "get", "delete", "get", "delete"):
        service.handle(msg(7, command=command))
    assert LOG == [7, True, None, False]
    assert isinstance(service.logger, logging.Logger)  # the key did not clobber it


def test_swap_scope_is_per_service_instance() -> None:
    # 0.2 bound the shared handlers to the last instance built (fixed)
    first, second = Scoped(), Scoped()
    first.handle(msg(1, command="put"))
    second.handle(msg(2, command="put"))
    first.handle(msg(command="get"))
    second.handle(msg(command="get"))
    assert LOG == [1, 2]


async def test_async_service() -> None:
    class Svc(AsyncService):
        service_commands = ServiceBuilder(ServiceBlock(AP, APost))

    service = Svc()
    assert await service.handle(msg(command="ap")) is None
    m = msg(command="nope")
    assert await service.handle(m) is m
    assert LOG == ["ap", ("apost", "Msg")]
    assert isinstance(
        service._commands["ap"].post_processor, AsyncCommandHandlerPostProcessStrategy
    )


async def test_async_default_post_processor_and_errors() -> None:
    class AFail(AsyncCommandHandlerProcessStrategy):
        target_command = "afail"

        async def process(self, msg: Msg) -> Msg:
            raise ValueError("x")

    service = AsyncService(ServiceBuilder(ServiceBlock(AFail), ServiceBlock(AP)))
    assert isinstance(service._commands["ap"].post_processor, AsyncDefaultPostProcessStrategy)
    m = msg(command="afail")
    assert await service.handle(m) is m
    strict = AsyncService(ServiceBuilder(ServiceBlock(AFail)), is_catch_exceptions=False)
    with pytest.raises(ValueError):
        await strict.handle(m)


def test_named_service_has_no_in_process_handle() -> None:
    from orch_serv.exceptions import OrchServError

    named = Service("named")

    @named.command("c")
    def handler(body: Any) -> Any:
        return body

    with pytest.raises(OrchServError, match="handle\\(\\) runs the class-style handlers"):
        named.handle(msg(command="c"))


async def test_async_swap_scope_across_commands() -> None:
    class APut(AsyncCommandHandlerProcessStrategy):
        target_command = "put"

        async def process(self, msg: Msg) -> Msg:
            self.set_to_swap_scope("k", msg.body.value)
            return msg

    class AGet(AsyncCommandHandlerProcessStrategy):
        target_command = "get"

        async def process(self, msg: Msg) -> Msg:
            LOG.append(self.get_from_swap_scope("k"))
            return msg

    class ADelete(AsyncCommandHandlerProcessStrategy):
        target_command = "delete"

        async def process(self, msg: Msg) -> Msg:
            LOG.append(self.del_from_swap_scope("k"))
            return msg

    service = AsyncService(
        ServiceBuilder(ServiceBlock(APut), ServiceBlock(AGet), ServiceBlock(ADelete))
    )
    for command in ("put", "get", "delete", "get"):
        await service.handle(msg(5, command=command))
    assert LOG == [5, True, None]
