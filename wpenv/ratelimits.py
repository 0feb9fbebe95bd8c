"""AWS's published API request rates, and the token buckets that keep to them.

One table serves both sides of the wire: the operator waits for a token before each AWS
call (`wpenv.aws`), so it never sends faster than AWS allows, and the test platform refuses
a call over its bucket with the service's throttling error, as AWS does
(tests/platform/chaos.py). Each rate cites the AWS page it comes from.

Services are named by their SigV4 signing name (``ecs``, ``ec2``, ``elasticloadbalancing``,
``cognito-idp``, ``secretsmanager``), the name both a request's signature and botocore's
service model carry. A bucket holds up to `capacity` tokens and refills `refill` a second;
each call takes one from every bucket it is subject to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

ELBV2_VERSION = "2015-12-01"


class Request(Protocol):
    """What a limit looks at in one AWS call (the platform's and the operator's alike)."""

    @property
    def service(self) -> str:
        """The SigV4 signing name."""

    @property
    def action(self) -> str:
        """The API operation, e.g. DescribeServices."""

    @property
    def params(self) -> Mapping[str, str]:
        """Top-level parameters (query parameters, or JSON scalars)."""


@dataclass(frozen=True)
class Call:
    """One AWS call as the operator sees it before sending it."""

    service: str
    action: str
    params: Mapping[str, str]


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
    match: Callable[[Request], bool] | None = None
    exclusive: bool = False  # an override for one action: the other limits do not apply

    def applies(self, call: Request) -> bool:
        """Whether `call` takes a token from this limit's buckets."""
        if call.service != self.service:
            return False
        if self.match is not None:
            return self.match(call)
        return call.action in self.actions

    def key(self, call: Request) -> tuple[str, ...]:
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
    """The buckets of a set of limits, safe across threads.

    The platform `admit`s a call or refuses it, as AWS does; the operator `reserve`s a
    token and waits until it is its own (`wait`), so it is never refused. A reservation
    takes the token at once, into debt if need be: callers queue in the order they came,
    none starves, and the lock is never held while anyone sleeps.
    """

    def __init__(self, limits: Iterable[Limit], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, headroom: float = 0.0):
        """Full buckets, created on first use; `headroom` tokens fewer than the limit's
        capacity each (at least one), so that AWS's own bucket keeps that many."""
        self.limits = tuple(limits)
        self.clock = clock
        self.sleep = sleep
        self.headroom = headroom
        self.buckets: dict[tuple[str, ...], Bucket] = {}
        self.lock = threading.Lock()

    def applicable(self, call: Request) -> list[Limit]:
        """The limits `call` is subject to (only the override when one names its action)."""
        found = [limit for limit in self.limits if limit.applies(call)]
        exclusive = [limit for limit in found if limit.exclusive]
        return exclusive or found

    def _buckets(self, call: Request, limits: Iterable[Limit], now: float) -> list[Bucket]:
        """The (topped-up) buckets `call` draws from; the caller holds the lock."""
        drawn = []
        for limit in limits:
            key = limit.key(call)
            bucket = self.buckets.get(key)
            if bucket is None:
                capacity = max(1.0, limit.capacity - self.headroom)
                bucket = self.buckets[key] = Bucket(capacity, limit.refill, capacity, now)
            bucket.top_up(now)
            drawn.append(bucket)
        return drawn

    def admit(self, call: Request) -> Limit | None:
        """None when every bucket of `call` had a token (taken); else the empty one's limit."""
        limits = self.applicable(call)
        if not limits:
            return None
        with self.lock:
            drawn = self._buckets(call, limits, self.clock())
            for limit, bucket in zip(limits, drawn, strict=True):
                if bucket.tokens < 1.0:
                    return limit
            for bucket in drawn:
                bucket.tokens -= 1.0
        return None

    def reserve(self, call: Request) -> float:
        """Take a token from each bucket of `call` now; the seconds until all are paid for."""
        limits = self.applicable(call)
        if not limits:
            return 0.0
        with self.lock:
            delay = 0.0
            for bucket in self._buckets(call, limits, self.clock()):
                bucket.tokens -= 1.0
                if bucket.tokens < 0.0:
                    delay = max(delay, -bucket.tokens / bucket.refill)
        return delay

    def wait(self, call: Request) -> float:
        """Block until `call` may be sent without going over any rate; the seconds waited."""
        delay = self.reserve(call)
        if delay > 0.0:
            self.sleep(delay)
        return delay


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


def _ec2_filtered(call: Request) -> bool:
    """Filtered or paginated: query parameters Filter.N.*, or botocore's Filters."""
    return any(k.startswith(("Filter.", "Filters")) or k in ("MaxResults", "NextToken")
               for k in call.params)


def _ec2_category(call: Request) -> str:
    """Which of the page's categories `call` falls in."""
    if call.action in EC2_UNCATEGORIZED:
        return "Uncategorized"
    if call.action in EC2_RESOURCE_INTENSIVE:
        return "ResourceIntensive"
    if call.action.startswith(EC2_READ_PREFIXES):
        unfiltered = call.action in EC2_UNFILTERED and not _ec2_filtered(call)
        return "UnfilteredNonMutating" if unfiltered else "NonMutating"
    return "Mutating"


def _ec2_in(category: str) -> Callable[[Request], bool]:
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


def _elbv2(call: Request) -> bool:
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


def parse_limits(
    spec: str, defaults: Iterable[Limit] = DEFAULT_LIMITS, *, source: str = "rate limits"
) -> tuple[Limit, ...]:
    """The limits `spec` asks for; ValueError, naming `source`, when it is malformed.

    `spec` is comma-separated: ``on`` (the defaults, also when empty), ``off`` (none), and
    overrides ``service:name=capacity/refill``, where `name` is a limit's name (its
    capacity and refill change) or an action's (a bucket of its own instead of its
    category's); ``capacity`` alone means that many a second.
    """
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
                f"{source}: {item!r} is not on, off or service:name=capacity/refill"
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


