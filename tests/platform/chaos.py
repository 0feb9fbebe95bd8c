"""Throttling and server errors in the platform's AWS, answered the way AWS answers them.

Real AWS throttles and fails now and then; moto never does. This layer (in motoserver.py,
inside the journal, so the journal records the injected status) answers some AWS calls
itself, before the fidelity layer and moto see them, in the wire format of the service's
protocol, so botocore parses them into the ClientError AWS would cause:

- **Random faults.** ``WPENV_AWS_FAULT_RATE`` (a fraction, default 0) of the calls is
  answered with one of ``WPENV_AWS_FAULT_CODES`` (default
  ``ThrottlingException,InternalFailure,ServiceUnavailable``), picked at random (seeded by
  ``WPENV_AWS_FAULT_SEED`` when set). A throttling name stands for the service's own
  throttling error (EC2 ``RequestLimitExceeded`` with 503, IAM/STS ``Throttling``, Cognito
  ``TooManyRequestsException``, ...: THROTTLES); ``InternalFailure`` is a 500 and
  ``ServiceUnavailable`` a 503 (AWS "Common Errors"); ``Code:status`` names any other.
- **Rate limits.** Token buckets with the rates AWS publishes (ECS, EC2, ELBv2, Cognito,
  Secrets Manager: DEFAULT_LIMITS); a call over its bucket gets the service's throttling
  error. On by default; ``WPENV_AWS_RATE_LIMITS`` is ``on``, ``off``, and/or overrides
  ``service:name=capacity/refill`` (a limit's name, or an action name for a bucket of that
  action alone), comma-separated, e.g. ``off,ecs:DescribeServices=2/0``.

Not touched: the platform's own endpoints (``/wpenv/``, ``/moto-api``) and S3 (streamed
multipart uploads would need the body drained mid-stream, and S3 publishes no per-API rate
that a test could reach). The injected answer is given *instead of* moto's, so a retried
write is never applied twice (AWS may apply a write and still answer 500; this does not).

- **Slow answers.** ``WPENV_AWS_SLOW_RATE`` (a fraction, default 0) of the calls to
  ``WPENV_AWS_SLOW_ACTIONS`` (comma-separated action names; empty: every action) is
  processed by moto as usual, but its answer is held ``WPENV_AWS_SLOW_SECONDS`` (default 5)
  before it is sent: a client whose read timeout is shorter gives up and retries a call
  that AWS already carried out, as happens when an answer is lost on the way.
  ``WPENV_AWS_SLOW_FIRST`` (default 0) holds the first N calls of each of those actions
  (counted from the last change), whatever the rate: a deterministic lost answer.

``GET``/``POST``/``DELETE /wpenv/faults/aws`` (through faults.py) reads, changes (JSON with
any of ``rate``, ``codes``, ``seed``, ``rate_limits``, ``slow_rate``, ``slow_seconds``,
``slow_actions``, ``slow_first``) and resets to the start-up settings;
``DELETE /wpenv/faults`` resets it too. Tests call :func:`set_aws_faults`,
:func:`reset_aws_faults` and :func:`aws_fault_state`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tests.platform.fidelity import Refusal, answer
from tests.platform.journal import IGNORED_PREFIXES, REFUSED_BY
from tests.platform.requests import AwsRequest, describe, operation, read

log = logging.getLogger("wpenv.chaos")

RATE_ENV = "WPENV_AWS_FAULT_RATE"
CODES_ENV = "WPENV_AWS_FAULT_CODES"
SEED_ENV = "WPENV_AWS_FAULT_SEED"
LIMITS_ENV = "WPENV_AWS_RATE_LIMITS"
SLOW_RATE_ENV = "WPENV_AWS_SLOW_RATE"
SLOW_SECONDS_ENV = "WPENV_AWS_SLOW_SECONDS"
SLOW_ACTIONS_ENV = "WPENV_AWS_SLOW_ACTIONS"
SLOW_FIRST_ENV = "WPENV_AWS_SLOW_FIRST"
DEFAULT_SLOW_SECONDS = 5.0
DEFAULT_CODES = ("ThrottlingException", "InternalFailure", "ServiceUnavailable")
CONTROL_PATH = "/wpenv/faults/aws"
MAX_BODY = 1 << 20
UNTOUCHED_SERVICES = frozenset({"s3"})
ELBV2_VERSION = "2015-12-01"


# --- the errors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """A service's throttling error: code, HTTP status, message."""

    code: str
    status: int = 400
    message: str = "Rate exceeded"


# Keyed by SigV4 signing name. Where a service names its own throttling error, that one.
THROTTLES: dict[str, Throttle] = {
    # "Request throttling for the Amazon EC2 API": RequestLimitExceeded; "Error codes for
    # the Amazon EC2 API" lists it among the server errors (500-series).
    "ec2": Throttle("RequestLimitExceeded", 503, "Request limit exceeded."),
    # "Request throttling for the Elastic Load Balancing API": ThrottlingException, "Rate
    # exceeded".
    "elasticloadbalancing": Throttle("ThrottlingException"),
    # Knowledge Center "How do I resolve API throttling or 'Rate exceeded' errors for IAM
    # and AWS STS?": "Throttling: Rate exceeded, status code: 400".
    "iam": Throttle("Throttling"),
    "sts": Throttle("Throttling"),
    # Amazon Cognito user pools API reference, every operation: TooManyRequestsException.
    "cognito-idp": Throttle("TooManyRequestsException", 400, "Too many requests"),
    # Amazon EFS API reference (CreateAccessPoint): ThrottlingException, HTTP 429.
    "elasticfilesystem": Throttle("ThrottlingException", 429),
    # Resource Groups Tagging API reference: ThrottledException.
    "tagging": Throttle("ThrottledException"),
}
# "Common Errors" of every JSON and query API (ECS, Secrets Manager, CloudWatch Logs,
# Application Auto Scaling, ...): ThrottlingException, 400.
DEFAULT_THROTTLE = Throttle("ThrottlingException")
THROTTLING_NAMES = frozenset(
    {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException",
     "ThrottledException"}
)
# "Common Errors": InternalFailure 500, ServiceUnavailable 503 (EC2 lists both too).
SERVER_ERRORS: dict[str, tuple[int, str]] = {
    "InternalFailure": (500, "The request processing has failed because of an unknown "
                             "error, exception or failure."),
    "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the "
                                "server."),
}


def throttle_for(service: str) -> Throttle:
    """The throttling error `service` (a signing name) answers with."""
    return THROTTLES.get(service, DEFAULT_THROTTLE)


def fault_for(code: str, service: str) -> Throttle:
    """The error one fault code means for `service`: throttling names map to the service's."""
    if code in THROTTLING_NAMES:
        return throttle_for(service)
    name, _, status = code.partition(":")
    if not name:
        raise ValueError(f"empty fault code in {code!r}")
    if status:
        if not status.isdigit() or not 400 <= int(status) <= 599:
            raise ValueError(f"fault code {code!r}: the status must be 400-599")
        return Throttle(name, int(status), SERVER_ERRORS.get(name, (0, name))[1])
    if name not in SERVER_ERRORS:
        raise ValueError(f"fault code {name!r}: give its HTTP status as {name}:<status>")
    known_status, message = SERVER_ERRORS[name]
    return Throttle(name, known_status, message)


# --- what a call is --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """What chaos sees of one AWS request."""

    service: str  # the SigV4 signing name
    action: str
    protocol: str  # json | query | ec2 | rest-json | rpc-v2-cbor; "" when left alone
    params: Mapping[str, str] = field(default_factory=dict)  # query params / JSON scalars


def call_of(request: AwsRequest) -> Call:
    """What chaos sees of a described request; S3 and other REST-XML calls are left alone."""
    protocol = request.protocol
    if request.service in UNTOUCHED_SERVICES or protocol == "rest-xml":
        protocol = ""
    return Call(request.service, request.action, protocol, request.params)


def operation_name(request: AwsRequest) -> str:
    """The operation a request is (botocore's name: CreateAccessPoint), else its action."""
    found = operation(request)
    return str(found[0].name) if found is not None else request.action


def describe_call(environ: WSGIEnvironment, body: bytes) -> Call:
    """Service, operation and protocol of a request (its body already read into `body`)."""
    return call_of(describe(environ, body))


# --- token buckets ---------------------------------------------------------------------------


@dataclass
class Bucket:
    """Up to `capacity` tokens, refilled continuously at `refill` per second; one a call."""

    capacity: float
    refill: float
    tokens: float
    updated: float

    def top_up(self, now: float) -> None:
        """Add what refilled since the last look (never above capacity)."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.refill)
        self.updated = now


@dataclass(frozen=True)
class Limit:
    """One published rate: which calls share a bucket of what size.

    `per` says what one bucket covers: "group" (every matching call: ECS, ELBv2, Cognito and
    Secrets Manager categories), "action" (each action its own: EC2 evaluates each API
    individually) or "pool" (each action and user pool: Cognito's 5 RPS per pool).
    """

    service: str
    name: str
    capacity: float
    refill: float
    actions: frozenset[str] = frozenset()
    per: str = "group"
    match: Callable[[Call], bool] | None = None
    exclusive: bool = False  # an override for one action: the other limits do not apply

    def applies(self, call: Call) -> bool:
        """Whether `call` takes a token from this limit's buckets."""
        if call.service != self.service:
            return False
        if self.match is not None:
            return self.match(call)
        return call.action in self.actions

    def key(self, call: Call) -> tuple[str, ...]:
        """The bucket `call` draws from."""
        key = (self.service, self.name)
        if self.per == "action":
            return (*key, call.action)
        if self.per == "pool":
            return (*key, call.action, call.params.get("UserPoolId", ""))
        return key

    def describe(self) -> dict[str, Any]:
        """The limit as the state endpoint shows it."""
        return {"service": self.service, "name": self.name, "capacity": self.capacity,
                "refill": self.refill, "per": self.per}


class Limiter:
    """The buckets of a set of limits; `admit` takes a token from each bucket a call uses."""

    def __init__(self, limits: Iterable[Limit], clock: Callable[[], float] = time.monotonic):
        """Full buckets, created on first use."""
        self.limits = tuple(limits)
        self.clock = clock
        self.buckets: dict[tuple[str, ...], Bucket] = {}
        self.lock = threading.Lock()

    def applicable(self, call: Call) -> list[Limit]:
        """The limits `call` is subject to (only the override when one names its action)."""
        found = [limit for limit in self.limits if limit.applies(call)]
        exclusive = [limit for limit in found if limit.exclusive]
        return exclusive or found

    def admit(self, call: Call) -> Limit | None:
        """None when every bucket of `call` had a token (taken); else the empty one's limit."""
        limits = self.applicable(call)
        if not limits:
            return None
        with self.lock:
            now = self.clock()
            drawn = []
            for limit in limits:
                bucket = self.buckets.setdefault(
                    limit.key(call), Bucket(limit.capacity, limit.refill, limit.capacity, now)
                )
                bucket.top_up(now)
                if bucket.tokens < 1.0:
                    return limit
                drawn.append(bucket)
            for bucket in drawn:
                bucket.tokens -= 1.0
        return None


# --- the published rates ---------------------------------------------------------------------


def _group(service: str, name: str, capacity: float, refill: float, *actions: str) -> Limit:
    return Limit(service, name, capacity, refill, frozenset(actions))


def _per_second(service: str, name: str, rate: float, *actions: str) -> Limit:
    """A quota given as "N per second": a bucket of N refilled at N a second."""
    return _group(service, name, rate, rate, *actions)


# "Request throttling for the Amazon ECS API", "Request token bucket sizes and refill rates".
ECS_LIMITS = (
    _group("ecs", "ClusterModify", 20, 1, "CreateCluster", "DeleteCluster",
           "PutClusterCapacityProviders", "UpdateCluster", "UpdateClusterSettings"),
    _group("ecs", "ClusterRead", 50, 20, "DescribeClusters", "ListClusters"),
    _group("ecs", "TaskDefinitionModify", 20, 1, "DeregisterTaskDefinition",
           "RegisterTaskDefinition"),
    _group("ecs", "TaskDefinitionRead", 50, 20, "DescribeTaskDefinition",
           "ListTaskDefinitions", "ListTaskDefinitionFamilies"),
    _group("ecs", "TaskDefinitionDeletion", 5, 1, "DeleteTaskDefinitions"),
    _group("ecs", "CapacityProviderModify", 10, 1, "CreateCapacityProvider",
           "DeleteCapacityProvider", "UpdateCapacityProvider"),
    _group("ecs", "CapacityProviderRead", 50, 20, "DescribeCapacityProviders"),
    _group("ecs", "TagModify", 20, 10, "TagResource", "UntagResource"),
    _group("ecs", "TagRead", 50, 20, "ListTagsForResource"),
    _group("ecs", "SettingModify", 10, 1, "DeleteAccountSetting", "PutAccountSetting",
           "PutAccountSettingDefault"),
    _group("ecs", "SettingRead", 50, 20, "ListAccountSettings"),
    _group("ecs", "ClusterResourceModify", 100, 40, "DeleteAttributes",
           "DeregisterContainerInstance", "ExecuteCommand", "PutAttributes", "RunTask",
           "StartTask", "StopTask", "UpdateContainerAgent", "UpdateContainerInstancesState"),
    _group("ecs", "ClusterResourceRead", 100, 20, "DescribeContainerInstances",
           "DescribeTasks", "ListAttributes", "ListContainerInstances", "ListTasks"),
    _group("ecs", "AgentModify", 200, 120, "RegisterContainerInstance",
           "SubmitAttachmentStateChanges", "SubmitContainerStateChange",
           "SubmitTaskStateChange"),
    _group("ecs", "ServiceModify", 50, 5, "CreateService", "DeleteService", "UpdateService"),
    _group("ecs", "ServiceRead", 100, 20, "DescribeServices", "ListServices"),
    _group("ecs", "ServiceDeployment", 50, 20, "DescribeServiceDeployments",
           "ListServiceDeployments"),
    _group("ecs", "ServiceRevision", 50, 20, "DescribeServiceRevisions"),
    _group("ecs", "TaskProtection", 200, 80, "UpdateTaskProtection", "GetTaskProtection"),
    _group("ecs", "ClusterServiceResourceRead", 10, 1, "ListServicesByNamespace"),
)

# "Request throttling for the Amazon EC2 API": each API has its own bucket, sized by category.
EC2_UNFILTERED = frozenset({
    "DescribeInstances", "DescribeInstanceStatus", "DescribeNetworkInterfaces",
    "DescribeSecurityGroups", "DescribeSnapshots", "DescribeSpotInstanceRequests",
    "DescribeVolumes",
})
EC2_RESOURCE_INTENSIVE = frozenset({
    "AcceptVpcPeeringConnection", "AuthorizeSecurityGroupIngress", "CancelSpotInstanceRequests",
    "CreateKeyPair", "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection",
    "RejectVpcPeeringConnection", "RevokeSecurityGroupIngress", "RequestSpotInstances",
})
# The page's "Uncategorized actions" near what the platform runs (the table has ~100).
EC2_UNCATEGORIZED: dict[str, tuple[float, float]] = {
    "CreateTags": (100, 10), "DeleteTags": (100, 10),
    "CreateNetworkInterface": (100, 5), "DeleteNetworkInterface": (100, 5),
    "ModifyNetworkInterfaceAttribute": (100, 5),
    "CreateNatGateway": (10, 1), "DeleteNatGateway": (10, 1),
    "CreateVpcEndpoint": (4, 0.3), "DeleteVpcEndpoints": (4, 0.3),
    "ModifyVpcEndpoint": (4, 0.3),
    "CreateDefaultVpc": (1, 1), "CreateDefaultSubnet": (1, 1),
    "DescribeSecurityGroupReferences": (20, 5), "DescribeStaleSecurityGroups": (20, 5),
    "RunInstances": (5, 2), "StartInstances": (5, 2), "TerminateInstances": (100, 5),
}
EC2_READ_PREFIXES = ("Describe", "List", "Search", "Get")


def _ec2_filtered(call: Call) -> bool:
    return any(k.startswith("Filter.") or k in ("MaxResults", "NextToken") for k in call.params)


def _ec2_category(call: Call) -> str:
    """Which of the page's categories `call` falls in."""
    if call.action in EC2_UNCATEGORIZED:
        return "Uncategorized"
    if call.action in EC2_RESOURCE_INTENSIVE:
        return "ResourceIntensive"
    if call.action.startswith(EC2_READ_PREFIXES):
        unfiltered = call.action in EC2_UNFILTERED and not _ec2_filtered(call)
        return "UnfilteredNonMutating" if unfiltered else "NonMutating"
    return "Mutating"


def _ec2_in(category: str) -> Callable[[Call], bool]:
    return lambda call: _ec2_category(call) == category


EC2_LIMITS = (
    Limit("ec2", "NonMutating", 100, 20, per="action", match=_ec2_in("NonMutating")),
    Limit("ec2", "UnfilteredNonMutating", 50, 10, per="action",
          match=_ec2_in("UnfilteredNonMutating")),
    Limit("ec2", "Mutating", 50, 5, per="action", match=_ec2_in("Mutating")),
    Limit("ec2", "ResourceIntensive", 50, 5, per="action", match=_ec2_in("ResourceIntensive")),
    *(_group("ec2", action, capacity, refill, action)
      for action, (capacity, refill) in EC2_UNCATEGORIZED.items()),
)


def _elbv2(call: Call) -> bool:
    return call.params.get("Version") == ELBV2_VERSION


# "Request throttling for the Elastic Load Balancing API": categories, and an account-level
# bucket (40, 10 a second) shared by every action. ELB API version 1 is left alone.
ELB = "elasticloadbalancing"
ELBV2_LIMITS = (
    Limit(ELB, "Account", 40, 10, match=_elbv2),
    _group(ELB, "ResourceIntensive", 10, 0.2, "CreateLoadBalancer", "SetSubnets"),
    _group(ELB, "Registration", 20, 4, "RegisterTargets", "DeregisterTargets"),
    _group(ELB, "NonMutating", 40, 10, "DescribeAccountLimits", "DescribeCapacityReservation",
           "DescribeListenerAttributes", "DescribeListenerCertificates", "DescribeListeners",
           "DescribeLoadBalancerAttributes", "DescribeLoadBalancers", "DescribeRules",
           "DescribeSSLPolicies", "DescribeTags", "DescribeTargetGroupAttributes",
           "DescribeTargetGroups", "DescribeTargetHealth"),
    _group(ELB, "Mutating", 20, 3, "AddListenerCertificates", "AddTags", "CreateListener",
           "CreateRule", "CreateTargetGroup", "DeleteListener", "DeleteLoadBalancer",
           "DeleteRule", "DeleteTargetGroup", "ModifyCapacityReservation", "ModifyIpPools",
           "ModifyListener", "ModifyListenerAttributes", "ModifyLoadBalancerAttributes",
           "ModifyRule", "ModifyTargetGroup", "ModifyTargetGroupAttributes",
           "RemoveListenerCertificates", "RemoveTags", "SetIpAddressType",
           "SetRulePriorities", "SetSecurityGroups"),
    _group(ELB, "CreateTrustStore", 10, 0.2, "CreateTrustStore"),
    _group(ELB, "TrustStoreModify", 10, 0.2, "AddTrustStoreRevocations",
           "DeleteSharedTrustStoreAssociation", "DeleteTrustStore", "ModifyTrustStore",
           "RemoveTrustStoreRevocations"),
    _group(ELB, "TrustStoreGet", 20, 4, "GetResourcePolicy",
           "GetTrustStoreCaCertificatesBundle", "GetTrustStoreRevocationContent"),
    _group(ELB, "TrustStoreDescribe", 40, 10, "DescribeTrustStoreAssociations",
           "DescribeTrustStoreRevocations", "DescribeTrustStores"),
)

# "Quotas in Amazon Cognito", "Amazon Cognito user pools API operation categories and request
# rate quotas" (requests per second; the managed-login parts of a category are not API calls).
COGNITO = "cognito-idp"
COGNITO_CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "UserAuthentication": (120, ("InitiateAuth", "RespondToAuthChallenge",
                                 "AdminInitiateAuth", "AdminRespondToAuthChallenge",
                                 "GetTokensFromRefreshToken")),
    "UserCreation": (50, ("SignUp", "ConfirmSignUp", "AdminCreateUser", "AdminConfirmSignUp")),
    "UserAccountRecovery": (30, ("ChangePassword", "ConfirmForgotPassword", "ForgotPassword",
                                 "AdminResetUserPassword", "AdminSetUserPassword")),
    "UserRead": (120, ("AdminGetUser", "AdminGetUserAuthFactors", "GetUser")),
    "UserUpdate": (25, (
        "AdminAddUserToGroup", "AdminDeleteUserAttributes", "AdminUpdateUserAttributes",
        "AdminDeleteUser", "AdminDisableUser", "AdminEnableUser", "AdminLinkProviderForUser",
        "AdminDisableProviderForUser", "VerifyUserAttribute", "DeleteUser",
        "DeleteUserAttributes", "UpdateUserAttributes", "AdminUserGlobalSignOut",
        "GlobalSignOut", "AdminRemoveUserFromGroup")),
    "UserToken": (120, ("RevokeToken",)),
    "UserResourceRead": (50, (
        "AdminGetDevice", "AdminListGroupsForUser", "AdminListDevices", "GetDevice",
        "ListDevices", "GetUserAttributeVerificationCode", "ResendConfirmationCode",
        "AdminListUserAuthEvents")),
    "UserResourceUpdate": (25, (
        "AdminForgetDevice", "AdminUpdateAuthEventFeedback", "AdminSetUserMFAPreference",
        "AdminDeleteSoftwareToken", "AdminSetUserSettings", "AdminUpdateDeviceStatus",
        "UpdateDeviceStatus", "UpdateAuthEventFeedback", "ConfirmDevice",
        "SetUserMFAPreference", "SetUserSettings", "VerifySoftwareToken",
        "AssociateSoftwareToken", "ForgetDevice")),
    "UserList": (30, ("ListUsers", "ListUsersInGroup")),
    "UserPoolRead": (15, ("DescribeUserPool", "ListUserPools")),
    "UserPoolUpdate": (15, ("CreateUserPool", "UpdateUserPool", "DeleteUserPool")),
    "UserPoolResourceRead": (20, (
        "DescribeIdentityProvider", "DescribeResourceServer", "DescribeUserImportJob",
        "DescribeUserPoolDomain", "GetCSVHeader", "GetGroup", "GetSigningCertificate",
        "GetIdentityProviderByIdentifier", "GetUserPoolMfaConfig", "ListGroups",
        "ListIdentityProviders", "ListResourceServers", "ListTagsForResource",
        "ListUserImportJobs", "DescribeRiskConfiguration", "GetUICustomization",
        "DescribeManagedLoginBranding", "DescribeManagedLoginBrandingByClient")),
    "UserPoolResourceUpdate": (15, (
        "AddCustomAttributes", "CreateGroup", "CreateIdentityProvider", "CreateResourceServer",
        "CreateUserImportJob", "CreateUserPoolDomain", "DeleteGroup", "DeleteIdentityProvider",
        "DeleteResourceServer", "DeleteUserPoolDomain", "SetUserPoolMfaConfig",
        "StartUserImportJob", "StopUserImportJob", "UpdateGroup", "UpdateIdentityProvider",
        "UpdateResourceServer", "UpdateUserPoolDomain", "SetRiskConfiguration",
        "SetUICustomization", "TagResource", "UntagResource", "CreateManagedLoginBranding",
        "UpdateManagedLoginBranding", "DeleteManagedLoginBranding")),
    "UserPoolClientRead": (15, ("DescribeUserPoolClient", "ListUserPoolClients")),
    "UserPoolClientUpdate": (15, ("CreateUserPoolClient", "DeleteUserPoolClient",
                                  "UpdateUserPoolClient")),
    "ClientAuthentication": (150, ("GetClientToken",)),
    "LimitManagement": (1, ("GetProvisionedLimit", "UpdateProvisionedLimit")),
}
# Footnote 3 of that table: any one operation of these at most 5 RPS for a single user pool.
COGNITO_PER_POOL = ("UserPoolResourceRead", "UserPoolResourceUpdate", "UserPoolClientRead",
                    "UserPoolClientUpdate")
COGNITO_LIMITS = (
    *(_per_second(COGNITO, name, rate, *actions)
      for name, (rate, actions) in COGNITO_CATEGORIES.items()),
    *(Limit(COGNITO, f"{name}PerPool", 5, 5, frozenset(COGNITO_CATEGORIES[name][1]), "pool")
      for name in COGNITO_PER_POOL),
)

# "AWS Secrets Manager quotas" (per second); ListSecrets from AWS What's New, 2022-11-11.
# The page's rows for CreateSecret, DeleteSecret and the rest could not be read: no bucket.
SM = "secretsmanager"
SECRETS_MANAGER_LIMITS = (
    _per_second(SM, "ResourcePolicy", 50, "DeleteResourcePolicy", "GetResourcePolicy",
                "PutResourcePolicy", "ValidateResourcePolicy"),
    _per_second(SM, "Read", 10_000, "DescribeSecret", "GetSecretValue"),
    _per_second(SM, "Update", 50, "PutSecretValue", "RemoveRegionsFromReplication",
                "ReplicateSecretToRegion", "StopReplicationToReplica", "UpdateSecret",
                "UpdateSecretVersionStage"),
    _per_second(SM, "RestoreSecret", 50, "RestoreSecret"),
    _per_second(SM, "Rotate", 50, "RotateSecret", "CancelRotateSecret"),
    _per_second(SM, "Tag", 50, "TagResource", "UntagResource"),
    _per_second(SM, "BatchGetSecretValue", 100, "BatchGetSecretValue"),
    _per_second(SM, "ListSecrets", 100, "ListSecrets"),
)

# IAM, STS, EFS, CloudWatch Logs (for the actions the operator calls), Application Auto
# Scaling and the tagging API publish no request rates: no bucket.
DEFAULT_LIMITS: tuple[Limit, ...] = (
    *ECS_LIMITS, *EC2_LIMITS, *ELBV2_LIMITS, *COGNITO_LIMITS, *SECRETS_MANAGER_LIMITS,
)


def parse_limits(spec: str, defaults: Iterable[Limit] = DEFAULT_LIMITS) -> tuple[Limit, ...]:
    """The limits `spec` (WPENV_AWS_RATE_LIMITS) asks for; ValueError when it is malformed."""
    enabled = True
    overrides: dict[tuple[str, str], tuple[float, float]] = {}
    for item in (part.strip() for part in spec.split(",")):
        if item.lower() in ("", "on", "off"):
            enabled = enabled if not item else item.lower() == "on"
            continue
        key, sep, size = item.partition("=")
        service, colon, name = key.strip().partition(":")
        burst, _, sustained = size.partition("/")
        try:
            numbers = (float(burst), float(sustained or burst))
        except ValueError:
            numbers = (-1.0, -1.0)
        if not (sep and colon and service and name) or min(numbers) < 0:
            raise ValueError(
                f"{LIMITS_ENV}: {item!r} is not on, off or service:name=capacity/refill"
            )
        overrides[(service, name.strip())] = numbers
    limits = list(defaults) if enabled else []
    for (service, name), (capacity, refill) in overrides.items():
        named = [i for i, limit in enumerate(limits) if (limit.service, limit.name) ==
                 (service, name) and not limit.exclusive]
        for i in named:
            limits[i] = replace(limits[i], capacity=capacity, refill=refill)
        if not named:  # an action: a bucket of its own, instead of its category's
            limits.append(Limit(service, name, capacity, refill, frozenset({name}),
                                exclusive=True))
    return tuple(limits)


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slowness:
    """Which answers are held, and for how long (validated on construction)."""

    rate: float = 0.0
    seconds: float = DEFAULT_SLOW_SECONDS
    actions: tuple[str, ...] = ()  # empty: every action
    first: int = 0  # the first N calls of each action are held, whatever the rate

    def __post_init__(self) -> None:
        """Refuse what would fail later, inside a request."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"{SLOW_RATE_ENV}: {self.rate} is not a fraction between 0 and 1")
        if not 0.0 <= self.seconds <= 600.0:
            raise ValueError(f"{SLOW_SECONDS_ENV}: {self.seconds} is not 0-600 seconds")
        if self.first < 0:
            raise ValueError(f"{SLOW_FIRST_ENV}: {self.first} is negative")

    @property
    def on(self) -> bool:
        """Whether any answer may be held."""
        return self.seconds > 0 and (self.rate > 0 or self.first > 0)

    def covers(self, action: str) -> bool:
        """Whether calls of `action` may be held."""
        return not self.actions or action in self.actions


SLOW_KEYS = {"slow_rate": "rate", "slow_seconds": "seconds", "slow_actions": "actions",
             "slow_first": "first"}


@dataclass(frozen=True)
class ChaosSettings:
    """Fault rate, codes, seed, rate-limit spec and slow answers (validated on construction)."""

    rate: float = 0.0
    codes: tuple[str, ...] = DEFAULT_CODES
    seed: int | None = None
    rate_limits: str = "on"
    slow: Slowness = field(default_factory=Slowness)

    def __post_init__(self) -> None:
        """Refuse what would fail later, inside a request."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"{RATE_ENV}: {self.rate} is not a fraction between 0 and 1")
        if not self.codes:
            raise ValueError(f"{CODES_ENV}: no fault codes")
        for code in self.codes:
            fault_for(code, "")
        parse_limits(self.rate_limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChaosSettings:
        """Read WPENV_AWS_FAULT_*, WPENV_AWS_RATE_LIMITS and WPENV_AWS_SLOW_*."""
        try:
            rate = float(env.get(RATE_ENV) or 0)
            seed = int(env[SEED_ENV]) if env.get(SEED_ENV) else None
            slow = Slowness(
                rate=float(env.get(SLOW_RATE_ENV) or 0),
                seconds=float(env.get(SLOW_SECONDS_ENV) or DEFAULT_SLOW_SECONDS),
                actions=_codes(env.get(SLOW_ACTIONS_ENV) or ""),
                first=int(env.get(SLOW_FIRST_ENV) or 0),
            )
        except ValueError as exc:
            raise ValueError(f"WPENV_AWS_FAULT_* or WPENV_AWS_SLOW_*: {exc}") from None
        codes = _codes(env.get(CODES_ENV) or ",".join(DEFAULT_CODES))
        return cls(rate, codes, seed, env.get(LIMITS_ENV) or "on", slow)

    def changed(self, doc: Mapping[str, Any]) -> ChaosSettings:
        """These settings with the keys of a POST document replaced."""
        unknown = set(doc) - {"rate", "codes", "seed", "rate_limits", *SLOW_KEYS}
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
        codes = doc.get("codes", self.codes)
        seed = doc.get("seed", self.seed)
        return ChaosSettings(
            rate=float(doc.get("rate", self.rate)),
            codes=_codes(codes) if isinstance(codes, str) else tuple(str(c) for c in codes),
            seed=None if seed is None else int(seed),
            rate_limits=str(doc.get("rate_limits", self.rate_limits)),
            slow=self._slow_changed(doc),
        )

    def _slow_changed(self, doc: Mapping[str, Any]) -> Slowness:
        actions = doc.get("slow_actions", self.slow.actions)
        return Slowness(
            rate=float(doc.get("slow_rate", self.slow.rate)),
            seconds=float(doc.get("slow_seconds", self.slow.seconds)),
            actions=_codes(actions) if isinstance(actions, str)
            else tuple(str(a) for a in actions),
            first=int(doc.get("slow_first", self.slow.first)),
        )


def _codes(raw: str) -> tuple[str, ...]:
    return tuple(code.strip() for code in raw.split(",") if code.strip())


# --- the layer -------------------------------------------------------------------------------


class Chaos:
    """The faults and buckets in force, the WSGI layer applying them, and their endpoint."""

    name = "aws"  # its key in GET /wpenv/faults
    path = CONTROL_PATH

    def __init__(
        self, settings: ChaosSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Start with `settings` (default: from the environment); they are also the reset."""
        self.startup = settings if settings is not None else ChaosSettings.from_env(os.environ)
        self.clock = clock
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.slowed: Counter[str] = Counter()  # held answers per action, for `first`
        self._apply(self.startup)

    def _apply(self, settings: ChaosSettings) -> None:
        limiter = Limiter(parse_limits(settings.rate_limits), self.clock)
        with self.lock:
            self.settings = settings
            self.rng = random.Random(settings.seed)
            self.limiter = limiter
            self.injected.clear()
            self.slowed.clear()

    def decide(self, call: Call) -> Refusal | None:
        """The error to answer `call` with, or None to let it through."""
        judged = self.judge(call)
        return judged[1] if judged else None

    def judge(self, call: Call) -> tuple[str, Refusal] | None:
        """`decide`, and whether it is a "throttle" or an injected "fault"."""
        if not call.protocol:
            return None
        limit = self.limiter.admit(call)
        if limit is not None:
            error = throttle_for(call.service)
            self._count(f"throttled {call.service}:{limit.name}")
            return "throttle", Refusal(error.status, error.code, error.message,
                                       protocol=call.protocol)
        with self.lock:
            settings = self.settings
            if settings.rate <= 0.0 or self.rng.random() >= settings.rate:
                return None
            code = self.rng.choice(settings.codes)
        error = fault_for(code, call.service)
        self._count(f"fault {error.code}")
        return "fault", Refusal(error.status, error.code, error.message, protocol=call.protocol)

    def hold(self, call: Call, name: Callable[[], str] | None = None) -> float:
        """Seconds to hold the answer to `call` (already let through), 0 for none.

        `name` gives the operation's name where the action is not one (REST: EFS).
        """
        slow = self.settings.slow
        if not (call.protocol and slow.on):
            return 0.0
        action = name() if name is not None and call.protocol == "rest-json" else call.action
        with self.lock:
            if not slow.covers(action):
                return 0.0
            if self.slowed[action] >= slow.first and (
                slow.rate <= 0.0 or self.rng.random() >= slow.rate
            ):
                return 0.0
            self.slowed[action] += 1
            self.injected[f"slow {action}"] += 1
            return slow.seconds

    def _count(self, what: str) -> None:
        with self.lock:
            self.injected[what] += 1

    def state(self) -> dict[str, Any]:
        """What is in force, and how many calls were refused since the last change."""
        with self.lock:
            settings, injected = self.settings, dict(self.injected)
            limits = [limit.describe() for limit in self.limiter.limits]
        slow = settings.slow
        return {"rate": settings.rate, "codes": list(settings.codes), "seed": settings.seed,
                "rate_limits": settings.rate_limits, "limits": limits, "injected": injected,
                "slow_rate": slow.rate, "slow_seconds": slow.seconds,
                "slow_actions": list(slow.actions), "slow_first": slow.first}

    def clear(self) -> None:
        """Back to the start-up settings, with full buckets."""
        self._apply(self.startup)

    def handle(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The control endpoint: GET state, POST changes, DELETE resets."""
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        if method == "POST":
            try:
                length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
                doc = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(doc, dict):
                    raise ValueError("a JSON object")
                self._apply(self.settings.changed(doc))
            except (ValueError, TypeError) as exc:
                return _json(start_response, "400 Bad Request", {"error": str(exc)})
            log.info("AWS faults now %s", doc)
        elif method == "DELETE":
            self.clear()
        elif method != "GET":
            return _json(start_response, "405 Method Not Allowed", {"error": "GET, POST, DELETE"})
        return _json(start_response, "200 OK", self.state())

    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        """Answer the calls `decide` picks ourselves; hand everything else to `app`."""

        def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            if str(environ.get("PATH_INFO") or "").startswith(IGNORED_PREFIXES):
                return app(environ, start_response)
            request = read(environ)
            call = call_of(request)
            judged = self.judge(call)
            if judged is None:
                held = self.hold(call, lambda: operation_name(request))
                if held > 0:
                    return _held(app, environ, start_response, held)
                return app(environ, start_response)
            kind, refusal = judged
            environ[REFUSED_BY] = f"{kind} {refusal.code}"  # the journal counts it
            _drain(environ)
            return answer(start_response, refusal)

        return wsgi


def _held(
    app: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse,
    seconds: float,
) -> Iterable[bytes]:
    """Let `app` carry the request out, then wait `seconds` before answering."""
    answered: list[tuple[str, list[tuple[str, str]]]] = []

    def keep(status: str, headers: list[tuple[str, str]], *_exc: Any) -> Callable[[bytes], Any]:
        answered.append((status, headers))
        return lambda _data: None

    result = app(environ, keep)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    time.sleep(seconds)  # the client's read timeout runs out meanwhile
    status, headers = answered[-1]
    start_response(status, headers)
    return [body]


def _drain(environ: WSGIEnvironment) -> None:
    """Read what is left of a body we answer without, so the connection stays usable."""
    stream = environ.get("wsgi.input")
    if stream is not None and not isinstance(stream, io.BytesIO):
        try:
            remaining = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)


def _json(start_response: StartResponse, status: str, doc: object) -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


# --- the client side, for tests --------------------------------------------------------------


def _call(endpoint: str, method: str, doc: Mapping[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        endpoint.rstrip("/") + CONTROL_PATH,
        data=None if doc is None else json.dumps(doc).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        state: dict[str, Any] = json.loads(reply.read())
    return state


def set_aws_faults(
    endpoint: str,
    *,
    rate: float | None = None,
    codes: Iterable[str] | None = None,
    seed: int | None = None,
    rate_limits: str | None = None,
    **slow: Any,
) -> dict[str, Any]:
    """Change the server's faults at `endpoint` (AWS_ENDPOINT_URL); unnamed ones stay.

    `slow` takes the slow-answer keys: slow_rate, slow_seconds, slow_actions, slow_first.
    """
    unknown = set(slow) - set(SLOW_KEYS)
    if unknown:
        raise TypeError(f"unknown slow-answer keys: {sorted(unknown)}")
    doc: dict[str, Any] = {key: list(v) if key == "slow_actions" else v
                           for key, v in slow.items() if v is not None}
    if rate is not None:
        doc["rate"] = rate
    if codes is not None:
        doc["codes"] = list(codes)
    if seed is not None:
        doc["seed"] = seed
    if rate_limits is not None:
        doc["rate_limits"] = rate_limits
    return _call(endpoint, "POST", doc)


def reset_aws_faults(endpoint: str) -> dict[str, Any]:
    """Back to the server's start-up settings (its environment), with full buckets."""
    return _call(endpoint, "DELETE")


def aws_fault_state(endpoint: str) -> dict[str, Any]:
    """The server's fault settings, limits and counts of refused calls."""
    return _call(endpoint, "GET")
