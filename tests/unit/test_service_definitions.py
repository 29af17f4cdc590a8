"""Service definitions: decorator and class handlers, builder errors, handler inspection,
and the structured errors a worker replies with."""

from types import MethodType
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from orch_serv import exceptions as exc
from orch_serv.service import (
    AsyncCommandHandlerProcessStrategy,
    CommandHandler,
    CommandHandlerPostProcess,
    CommandHandlerProcessStrategy,
    Service,
    ServiceBlock,
    ServiceBuilder,
    as_services,
)
from orch_serv.service.handler import describe
from orch_serv.service.worker import error_info


class CsvFile(BaseModel):
    path: str
    rows: int = 0


class Validate(CommandHandler):
    target_command = "validate"

    async def process(self, body: CsvFile, ctx: Any) -> CsvFile:
        return body


class Transform(CommandHandler):
    target_command = "transform"

    def process(self, body: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return body


class ValidateAgain(CommandHandler):
    target_command = "validate"

    def process(self, body: Any, ctx: Any) -> Any:
        return body


class NoTarget(CommandHandler):
    def process(self, body: Any, ctx: Any) -> Any:
        return body


class Post(CommandHandlerPostProcess):
    def post_process(self, result: Any, extra: Any, ctx: Any) -> None:
        return None


class OtherPost(CommandHandlerPostProcess):
    async def post_process(self, result: Any, extra: Any, ctx: Any) -> None:
        return None


# -- decorator --------------------------------------------------------------------------------
def test_decorator_registration() -> None:
    service = Service("validator")

    @service.command("validate_csv")
    async def validate(body: CsvFile, ctx: Any) -> CsvFile:
        return body

    @service.command("count")
    def count(body: dict[str, Any]) -> int:
        return len(body)

    assert validate.__name__ == "validate"  # the decorator returns the function
    assert service.commands == ["validate_csv", "count"]
    spec = service.resolve("validate_csv")
    assert spec is not None
    assert spec.fn is validate
    assert spec.model is CsvFile
    assert spec.takes_context is True
    assert spec.is_async is True
    count_spec = service.resolve("count")
    assert count_spec is not None
    assert count_spec.fn is count
    assert count_spec.model is None
    assert count_spec.takes_context is False
    assert count_spec.is_async is False
    service.validate()


def test_decorator_post_process() -> None:
    service = Service("svc")

    async def after(result: Any, extra: Any, ctx: Any) -> None:
        return None

    @service.command("c", post_process=after)
    def handler(body: Any) -> Any:
        return body

    spec = service.resolve("c")
    assert spec is not None
    assert spec.post is after
    assert spec.post_is_async is True


def test_duplicate_decorator_command() -> None:
    service = Service("svc")

    @service.command("c")
    def first(body: Any) -> Any:
        return body

    with pytest.raises(exc.NotUniqueCommandError) as info:

        @service.command("c")
        def second(body: Any) -> Any:
            return body

    assert "`c`" in info.value.message
    resolved = service.resolve("c")
    assert resolved is not None and resolved.fn is first


@pytest.mark.parametrize("name", ["", "bad name", "a/b", 3])
def test_bad_command_name(name: Any) -> None:
    service = Service("svc")
    with pytest.raises(exc.ServiceBlockException):
        service.command(name)(lambda body: body)


@pytest.mark.parametrize("name", ["", "bad name"])
def test_bad_service_name(name: str) -> None:
    with pytest.raises(exc.ServiceBlockException):
        Service(name)


# -- class style ------------------------------------------------------------------------------
def test_class_handlers_via_builder() -> None:
    service = Service(
        "svc",
        ServiceBuilder(ServiceBlock(Validate), ServiceBlock(Transform(), Post)),
    )
    assert service.commands == ["validate", "transform"]
    validate = service.resolve("validate")
    assert validate is not None
    assert validate.model is CsvFile
    assert validate.takes_context is True
    assert validate.is_async is True
    assert validate.post is None
    transform = service.resolve("transform")
    assert transform is not None
    assert transform.model is None
    assert transform.takes_context is False
    assert transform.is_async is False
    assert isinstance(transform.post, MethodType)
    assert transform.post.__func__ is Post.post_process


def test_class_handlers_via_handlers_argument() -> None:
    service = Service("svc", handlers=[Validate, Transform()])
    assert service.commands == ["validate", "transform"]


def test_service_commands_class_attribute() -> None:
    class MyService(Service):
        service_commands = ServiceBuilder(ServiceBlock(Validate))

    assert MyService("svc").commands == ["validate"]


def test_service_commands_of_wrong_type() -> None:
    with pytest.raises(exc.ServiceBlockException):
        Service("svc", [ServiceBlock(Validate)])  # type: ignore[arg-type]


def test_handler_without_target_command() -> None:
    with pytest.raises(exc.ServiceBlockException) as info:
        ServiceBlock(NoTarget)
    assert "target_command" in info.value.message


def test_service_block_wrong_types() -> None:
    with pytest.raises(exc.ServiceBlockException):
        ServiceBlock(lambda body: body)
    with pytest.raises(exc.ServiceBlockException):
        ServiceBlock(Post)  # a post-processor is not a handler
    with pytest.raises(exc.ServiceBlockException):
        ServiceBlock(Validate, Transform)  # a handler is not a post-processor


def test_legacy_strategy_names() -> None:
    # orch_serv 0.2's strategies are distinct classes, accepted by ServiceBlock beside
    # CommandHandler (docs/architecture.md, "orch_serv 0.2 names")
    assert not issubclass(CommandHandlerProcessStrategy, CommandHandler)
    assert not issubclass(CommandHandlerProcessStrategy, AsyncCommandHandlerProcessStrategy)


# -- ServiceBuilder errors --------------------------------------------------------------------
def test_empty_builder() -> None:
    with pytest.raises(exc.EmptyCommandsException):
        ServiceBuilder()
    with pytest.raises(exc.EmptyCommandsException):
        ServiceBuilder(Post)


@pytest.mark.parametrize("bad", [Validate, Validate(), 1, "validate"])
def test_builder_non_block(bad: Any) -> None:
    with pytest.raises(exc.ServiceBlockException) as info:
        ServiceBuilder(ServiceBlock(Transform), bad)
    assert isinstance(info.value, TypeError)
    assert "ServiceBlock" in info.value.message


def test_builder_two_default_post_processors() -> None:
    with pytest.raises(exc.DoublePostProcessFunctionDeclaredError):
        ServiceBuilder(ServiceBlock(Validate), Post, default_post_process=OtherPost)
    with pytest.raises(exc.DoublePostProcessFunctionDeclaredError):
        ServiceBuilder(ServiceBlock(Validate), Post, OtherPost())


def test_builder_positional_post_is_default() -> None:
    builder = ServiceBuilder(ServiceBlock(Validate), OtherPost, ServiceBlock(Transform, Post))
    assert isinstance(builder.default_post, OtherPost)
    validate, transform = builder.specs()
    assert isinstance(validate.post, MethodType)
    assert validate.post.__func__ is OtherPost.post_process
    assert validate.post_is_async is True
    assert isinstance(transform.post, MethodType)
    assert transform.post.__func__ is Post.post_process
    assert transform.post_is_async is False


def test_builder_default_post_of_wrong_type() -> None:
    with pytest.raises(exc.ServiceBlockException):
        ServiceBuilder(ServiceBlock(Validate), default_post_process=Validate)


def test_duplicate_command_in_builder() -> None:
    with pytest.raises(exc.NotUniqueCommandError) as info:
        Service("svc", ServiceBuilder(ServiceBlock(Validate), ServiceBlock(ValidateAgain)))
    assert "validate" in info.value.message


def test_duplicate_command_across_builder_and_decorator() -> None:
    service = Service("svc", ServiceBuilder(ServiceBlock(Validate)))
    with pytest.raises(exc.NotUniqueCommandError):
        service.command("validate")(lambda body: body)


# -- validate / resolve -----------------------------------------------------------------------
def test_unknown_default_command() -> None:
    service = Service("svc", handlers=[Validate], default_command="missing_cmd")
    with pytest.raises(exc.IncorrectDefaultCommand) as info:
        service.validate()
    assert "missing_cmd" in info.value.message
    assert "None" not in info.value.message
    assert "validate" in info.value.message


def test_validate_empty_service() -> None:
    with pytest.raises(exc.EmptyCommandsException):
        Service("svc").validate()


def test_resolve_falls_back_to_default_command() -> None:
    service = Service("svc", handlers=[Validate, Transform], default_command="transform")
    service.validate()
    for asked, command in (("validate", "validate"), ("unknown", "transform"), (None, "transform")):
        resolved = service.resolve(asked)
        assert resolved is not None and resolved.command == command, asked


def test_resolve_unknown_without_default() -> None:
    service = Service("svc", handlers=[Validate])
    assert service.resolve("unknown") is None
    assert service.resolve(None) is None


def test_as_services() -> None:
    one = Service("one", handlers=[Validate])
    two = Service("two", handlers=[Transform])
    assert as_services(one) == [one]
    assert as_services([one, two]) == [one, two]

    class App:
        services = (one, two)

    assert as_services(App()) == [one, two]
    for bad in (object(), [], [one, "x"], "one"):
        with pytest.raises(exc.ServiceBlockException):
            as_services(bad)


# -- handler inspection -----------------------------------------------------------------------
def test_handler_with_no_parameters_rejected() -> None:
    def no_args() -> None:
        return None

    with pytest.raises(exc.ServiceBlockException) as info:
        describe("c", no_args)
    assert "0 arguments" in info.value.message


def test_handler_with_three_parameters_rejected() -> None:
    def three(body: Any, ctx: Any, extra: Any) -> None:
        return None

    with pytest.raises(exc.ServiceBlockException) as info:
        Service("svc").command("c")(three)
    assert "3 arguments" in info.value.message


def test_class_handler_with_three_parameters_rejected() -> None:
    class TooMany(CommandHandler):
        target_command = "too_many"

        def process(self, body: Any, ctx: Any, extra: Any) -> Any:  # type: ignore[override]
            return body

    with pytest.raises(exc.ServiceBlockException):
        Service("svc", handlers=[TooMany])


def test_handler_not_callable() -> None:
    with pytest.raises(exc.ServiceBlockException):
        describe("c", 42)  # type: ignore[arg-type]


def test_keyword_only_and_var_args_are_not_positional() -> None:
    def handler(body: Any, *args: Any, flag: bool = False, **kwargs: Any) -> Any:
        return body

    spec = describe("c", handler)
    assert spec.takes_context is False


def test_model_inferred_from_annotation() -> None:
    def typed(body: CsvFile) -> None:
        return None

    def as_dict(body: dict[str, Any]) -> None:
        return None

    def plain_dict(body: dict) -> None:  # type: ignore[type-arg]
        return None

    def as_any(body: Any) -> None:
        return None

    def unannotated(body):  # type: ignore[no-untyped-def]
        return None

    assert describe("c", typed).model is CsvFile
    assert describe("c", as_dict).model is None
    assert describe("c", plain_dict).model is None
    assert describe("c", as_any).model is None
    assert describe("c", unannotated).model is None


def test_model_annotation_as_string() -> None:
    def typed(body: "CsvFile") -> None:
        return None

    assert describe("c", typed).model is CsvFile


def test_optional_model_annotation() -> None:
    def typed(body: CsvFile | None) -> None:
        return None

    assert describe("c", typed).model is CsvFile


def test_takes_context_detection() -> None:
    def one(body: Any) -> None:
        return None

    def two(body: Any, ctx: Any) -> None:
        return None

    def with_default(body: Any, ctx: Any = None) -> None:
        return None

    assert describe("c", one).takes_context is False
    assert describe("c", two).takes_context is True
    assert describe("c", with_default).takes_context is True


def test_is_async_detection() -> None:
    async def coro(body: Any) -> None:
        return None

    def plain(body: Any) -> None:
        return None

    class AsyncCallable:
        async def __call__(self, body: Any) -> None:
            return None

    class SyncCallable:
        def __call__(self, body: Any) -> None:
            return None

    assert describe("c", coro).is_async is True
    assert describe("c", plain).is_async is False
    assert describe("c", AsyncCallable()).is_async is True
    assert describe("c", SyncCallable()).is_async is False
    assert describe("c", plain).post_is_async is False
    assert describe("c", plain, coro).post_is_async is True


# -- worker error_info ------------------------------------------------------------------------
def test_error_info_handler_error() -> None:
    info = error_info(exc.HandlerError("disk full", type="DiskFull", retryable=True))
    assert (info.type, info.message, info.retryable) == ("DiskFull", "disk full", True)
    info = error_info(exc.HandlerError("nope", retryable=False))
    assert (info.type, info.retryable) == ("HandlerError", False)

    class QuotaExceeded(exc.HandlerError):
        pass

    assert error_info(QuotaExceeded("q")).type == "QuotaExceeded"


def test_error_info_non_retryable() -> None:
    info = error_info(exc.NonRetryableError("bad input"))
    assert info.retryable is False
    assert info.type == "NonRetryableError"
    assert info.message == "bad input"
    assert error_info(exc.NonRetryableError("x", type="BadInput")).type == "BadInput"


def test_error_info_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        CsvFile.model_validate({"rows": "many"})
    info = error_info(caught.value)
    assert info.type == "ValidationError"
    assert info.retryable is False
    assert info.details is not None
    errors = info.details["errors"]
    assert {tuple(e["loc"]) for e in errors} == {("path",), ("rows",)}
    assert all("input" not in e and "url" not in e for e in errors)
    assert "2 error" in info.message


def test_error_info_other_exception() -> None:
    info = error_info(KeyError("k"))
    assert info.type == "KeyError"
    assert info.retryable is True
    info = error_info(RuntimeError("boom"))
    assert (info.type, info.message, info.retryable) == ("RuntimeError", "boom", True)
    assert error_info(RuntimeError()).message == "RuntimeError()"


def test_service_errors_hierarchy() -> None:
    for error in (
        exc.ServiceBlockException,
        exc.EmptyCommandsException,
        exc.NotUniqueCommandError,
        exc.IncorrectDefaultCommand,
        exc.DoublePostProcessFunctionDeclaredError,
        exc.HandlerError,
        exc.NonRetryableError,
    ):
        assert issubclass(error, exc.ServiceException)
        assert issubclass(error, exc.OrchServError)
    assert issubclass(exc.NonRetryableError, exc.HandlerError)
