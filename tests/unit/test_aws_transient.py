"""Errors told transient by code and whole message: IAM's propagation delay as ECS says it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from wpenv import aws, engine
from wpenv.errors import PermanentError, TransientError

ROLE = "arn:aws:iam::123456789012:role/wpenv/wpenv-acme-task"
ASSUME = (
    f"ECS was unable to assume the role '{ROLE}' that was provided for this task. Please "
    "verify that the role being passed has the proper trust relationship and permissions "
    "and that your IAM user has permissions to pass this role."
)


def _error(code: str, message: str, operation: str = "RegisterTaskDefinition") -> ClientError:
    response = {"Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 400}}
    return ClientError(response, operation)


def test_a_role_ecs_cannot_assume_yet_is_transient() -> None:
    exc = _error("ClientException", ASSUME)
    assert aws.is_transient(exc)
    assert isinstance(engine.classify(exc), TransientError)


@pytest.mark.parametrize(("code", "message"), [
    ("InvalidParameterException", ASSUME),  # the same words under another code
    ("ClientException", "Role is not valid"),
    ("ClientException", ASSUME + " And something else."),  # not the whole message
    ("ClientException", "Container.image should not be null or empty. " + ASSUME),
])
def test_anything_else_with_that_code_or_those_words_stays_permanent(
    code: str, message: str
) -> None:
    exc = _error(code, message)
    assert not aws.is_transient(exc)
    assert isinstance(engine.classify(exc), PermanentError)


def test_dependency_violation_is_transient_only_where_its_kind_says_so() -> None:
    """EC2's DependencyViolation is "in use a little longer" for DeleteSecurityGroup only
    (reconcilers/security_group.py), never by its code alone."""
    exc = _error("DependencyViolation", "resource sg-0123 has a dependent object",
                 "DeleteSecurityGroup")
    assert not aws.is_transient(exc)
    assert isinstance(engine.classify(exc), PermanentError)


def test_an_answer_that_does_not_parse_is_worth_another_pass() -> None:
    exc = ResponseParserError("Unable to parse response (syntax error: line 1, column 0), "
                              "invalid XML received: b'<!doctype html>...500 Internal Server'")
    assert aws.is_transient(exc)
    classified = engine.classify(exc)
    assert isinstance(classified, TransientError)
    assert "ResponseParserError" in str(classified)
