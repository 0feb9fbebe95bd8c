"""The platform refuses what botocore sends but AWS's model constraints refuse, over boto3.

The clients are the operator's own (botocore's parameter validation on): each request
below passes botocore's checks and is refused by the platform, as AWS refuses it, with
the service's code and AWS's "failed to satisfy constraint" message; nothing is made.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from wpenv.aws import Clients

pytestmark = pytest.mark.e2e

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


def _error(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    found = error.value.response["Error"]
    return str(found["Code"]), str(found["Message"])


def test_a_role_name_outside_the_pattern_is_a_validation_error(clients: Clients) -> None:
    name = f"wpenv bad {uuid.uuid4().hex[:6]}"
    with pytest.raises(ClientError) as error:
        clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    assert _error(error) == ("ValidationError", (
        f"1 validation error detected: Value '{name}' at 'roleName' failed to satisfy "
        r"constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+"))
    with pytest.raises(ClientError) as gone:
        clients.iam.get_role(RoleName=name.replace(" ", "-"))
    assert _error(gone)[0] == "NoSuchEntity"


def test_a_task_definition_with_an_unknown_network_mode_is_refused(clients: Clients) -> None:
    family = f"fidelity-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as error:
        clients.ecs.register_task_definition(
            family=family, networkMode="bridged",
            containerDefinitions=[{"name": "c", "image": "wordpress:6.8"}])
    assert _error(error) == ("ClientException", (
        "1 validation error detected: Value 'bridged' at 'networkMode' failed to satisfy "
        "constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]"))
    families = clients.ecs.list_task_definition_families(familyPrefix=family)["families"]
    assert families == []


def test_cognito_and_logs_answer_invalid_parameter(clients: Clients) -> None:
    with pytest.raises(ClientError) as error:
        clients.cognito_idp.create_user_pool(PoolName="p" * 129)
    code, text = _error(error)
    assert code == "InvalidParameterException"
    assert text.endswith("at 'poolName' failed to satisfy constraint: Member must have length "
                         "less than or equal to 128")
    with pytest.raises(ClientError) as error:
        clients.logs.create_log_group(logGroupName="wpenv:acme")
    assert _error(error)[0] == "InvalidParameterException"
    assert "at 'logGroupName' failed to satisfy constraint" in _error(error)[1]


# Refused before the operation looks for the listener: it need not exist.
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2"


def test_ec2_and_elbv2_ranges(clients: Clients) -> None:
    with pytest.raises(ClientError) as error:
        clients.ec2.describe_security_groups(MaxResults=1001)
    assert _error(error)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as error:
        clients.elbv2.describe_target_groups(PageSize=401)
    assert _error(error) == ("ValidationError", (
        "1 validation error detected: Value '401' at 'pageSize' failed to satisfy "
        "constraint: Member must have value less than or equal to 400"))
    with pytest.raises(ClientError) as error:
        clients.elbv2.create_rule(
            ListenerArn=LISTENER, Priority=50_001, Actions=[{"Type": "fixed-response",
            "FixedResponseConfig": {"StatusCode": "404"}}],
            Conditions=[{"Field": "path-pattern", "Values": ["/x"]}])
    assert _error(error) == ("ValidationError", (
        "1 validation error detected: Value '50001' at 'priority' failed to satisfy "
        "constraint: Member must have value less than or equal to 50000"))
