"""Statusek's return codes and their texts (``<Field>`` placeholders filled from the request),
and the reasons an instance finishes. The texts are quoted exactly, spelling included: clients
compare them."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """The outcome of a status operation (Statusek's return codes, by name)."""

    SUCCESS = "SUCCESS"
    INSTANCE_TOKEN_IS_NOT_FOUND = "INSTANCE_TOKEN_IS_NOT_FOUND"
    OBJECT_NAME_IS_NOT_FOUND = "OBJECT_NAME_IS_NOT_FOUND"
    STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT = "STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT"
    NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET = "NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET"
    NO_ONE_PREVIOS_OPTIONAL_STATUSES_ARE_SET = "NO_ONE_PREVIOS_OPTIONAL_STATUSES_ARE_SET"
    INSTANCE_IS_FINISHED = "INSTANCE_IS_FINISHED"
    AT_LEAST_ONE_NEXT_STATUS_IS_SET = "AT_LEAST_ONE_NEXT_STATUS_IS_SET"
    STATUS_IS_ALREADY_SET = "STATUS_IS_ALREADY_SET"
    DATABASE_ERROR = "DATABASE_ERROR"
    PARAMS_PARSING_IS_FAILED = "PARAMS_PARSING_IS_FAILED"


class FinishReason(StrEnum):
    """Why an instance is finished (``instanse_is_finished_description``)."""

    TIMEOUT = "TIMEOUT"
    STOP_STATUS_IS_SET = "STOP_STATUS_IS_SET"
    ALL_MANDATORY_STATUSES_ARE_SET = "ALL_MANDATORY_STATUSES_ARE_SET"


#: The texts of section 2.7 of the seed behaviours.
TEXTS: dict[Code, str] = {
    Code.SUCCESS: "Success",
    Code.INSTANCE_TOKEN_IS_NOT_FOUND: "ERROR: Instance token '<InstanceToken>' is not found",
    Code.OBJECT_NAME_IS_NOT_FOUND: "ERROR: Object name '<ObjectName>' is not found",
    Code.STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT: (
        "ERROR: Status name '<StatusName>' is not found for instance '<InstanceToken>'"
    ),
    Code.NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET: (
        "Not all previos mandatory statuses are set for status '<StatusName>'"
    ),
    Code.NO_ONE_PREVIOS_OPTIONAL_STATUSES_ARE_SET: (
        "No one previos optional statuses are sets for status '<StatusName>'"
    ),
    Code.INSTANCE_IS_FINISHED: (
        "Instance '<InstanceToken>' is finished by '<InstanceIsFinishedDescription>'"
    ),
    Code.AT_LEAST_ONE_NEXT_STATUS_IS_SET: (
        "At least one next status is set for optional status '<StatusName>'"
    ),
    Code.STATUS_IS_ALREADY_SET: (
        "Status '<StatusName>' is already set for instance '<InstanceToken>'"
    ),
    Code.DATABASE_ERROR: "Database error: '%s'",
    Code.PARAMS_PARSING_IS_FAILED: "Error while parameters parsing",
}

#: Refusals that ``checkStatusIsReadyToSet`` answers with ``status: true`` (the status is
#: simply not ready yet); the others are errors of the request.
RULE_REFUSALS = frozenset(
    {
        Code.NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET,
        Code.NO_ONE_PREVIOS_OPTIONAL_STATUSES_ARE_SET,
        Code.AT_LEAST_ONE_NEXT_STATUS_IS_SET,
        Code.STATUS_IS_ALREADY_SET,
    }
)


def text(
    code: Code,
    *,
    object_name: str = "",
    instance_token: str = "",
    status_name: str = "",
    status_message: str = "",
    finished: str = "",
) -> str:
    """The text of ``code`` with its placeholders filled in (``finished``: the real reason,
    where Statusek left ``<InstanceIsFinishedDescription>`` in the text)."""
    result = TEXTS[code]
    for placeholder, value in (
        ("<ObjectName>", object_name),
        ("<InstanceToken>", instance_token),
        ("<StatusName>", status_name),
        ("<StatusMessage>", status_message),
        ("<InstanceIsFinishedDescription>", finished),
    ):
        result = result.replace(placeholder, value)
    return result


__all__ = ["RULE_REFUSALS", "TEXTS", "Code", "FinishReason", "text"]
