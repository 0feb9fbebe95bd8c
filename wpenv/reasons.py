"""Every reason word the operator writes into a condition, an Event or an error.

A reason is one CamelCase word that says why (metav1.Condition's `reason`, an Event's
`reason`, `OperatorError.reason`); people, `kubectl wait`, the tests and Argo CD's health
check (manifests/argocd) read these words, so a value never changes once released. Each
one is defined here, once; the code names the constant, never the string.

Not here: condition *types* (Ready, the resource groups, Rollout, Suspended, Deprovision)
and AWS error codes, which `wpenv.engine.classify` passes through as the reason unchanged.

The foundation layer: imports nothing from wpenv.
"""

from __future__ import annotations

# --- waiting and transient trouble (TransientError: another pass later) ------------------

# A resource's declared dependency (or a recorded id it needs) does not exist yet.
WAITING_FOR_DEPENDENCIES = "WaitingForDependencies"
# The Database step needs the tenant's DB secret recorded, existing and holding a password.
WAITING_FOR_SECRET = "WaitingForSecret"  # noqa: S105 (a reason word)
# The task role's policy names the access point, which is not recorded yet.
WAITING_FOR_ACCESS_POINT = "WaitingForAccessPoint"
# The listener rule forwards to the tenant's target group, which is not recorded yet.
WAITING_FOR_TARGET_GROUP = "WaitingForTargetGroup"
# Secrets Manager still runs an earlier rotation of the DB secret (RotateSecret refused).
ROTATION_IN_PROGRESS = "RotationInProgress"
# WPENV_DB_MASTER_SECRET_ARN is not set, so nothing can reach the shared MySQL server.
MASTER_SECRET_MISSING = "MasterSecretMissing"  # noqa: S105 (a reason word)
# The shared MySQL server did not answer (cannot connect, connection lost).
DATABASE_UNREACHABLE = "DatabaseUnreachable"
# WPENV_DB_HOST is not set: the shared MySQL server's endpoint is unknown.
DATABASE_HOST_MISSING = "DatabaseHostMissing"
# No TLS 1.2+ connection to the shared MySQL server whose certificate and host name verify
# against WPENV_DB_CA_BUNDLE (an unreadable bundle too); nothing is sent in clear instead.
DATABASE_TLS_FAILED = "DatabaseTlsFailed"
# AWS throttled or had an internal error (wpenv.aws.is_transient): try again.
AWS_RETRYING = "AwsRetrying"
# The Kubernetes API server did not answer, or not yet (refused, timed out, 5xx, 429):
# a write of the status (an id, a step's progress) is tried again with the backoff.
KUBERNETES_UNAVAILABLE = "KubernetesUnavailable"
# The environment's object is no longer in the API (deleted while an event about it was
# handled): the pass stops and nothing more is done for it.
ENVIRONMENT_GONE = "EnvironmentGone"
# The ECS service of the same name is still DRAINING after a delete; re-create later.
SERVICE_DRAINING = "ServiceDraining"
# The tenant's security group is still used by network interfaces (of tasks that stopped
# a moment ago: ECS releases them a while later); its delete is tried again.
SECURITY_GROUP_IN_USE = "SecurityGroupInUse"
# A secret of the same name is scheduled for deletion and still being deleted.
SECRET_DELETION_PENDING = "SecretDeletionPending"  # noqa: S105 (a reason word)
# The account's Cognito user pool quota (settings.user_pool_quota) is used up.
USER_POOL_QUOTA_REACHED = "UserPoolQuotaReached"
# No load balancer pool is configured (WPENV_LOAD_BALANCER_ARNS is empty).
NO_LOAD_BALANCER_POOL = "NoLoadBalancerPool"
# A load balancer of the pool has no HTTPS listener to hold tenant rules.
NO_HTTPS_LISTENER = "NoHttpsListener"
# Every load balancer in the pool is at one of its quotas (rules, target groups, targets).
LOAD_BALANCER_POOL_FULL = "LoadBalancerPoolFull"
# The load balancer a tenant was placed on filled up before its rule was made: place again.
LOAD_BALANCER_FULL = "LoadBalancerFull"
# Another operator process holds a coordination Lease (a placement or the user-pool count,
# WPENV_COORDINATION=leases) for longer than a pass waits: the pass is tried again.
COORDINATION_BUSY = "CoordinationBusy"

# --- permanent trouble (PermanentError or Failed: a person must change something) --------

# The first deployment of the service failed: there is nothing to roll back to.
DEPLOYMENT_FAILED = "DeploymentFailed"
# An error that is neither ours nor an AWS one (a bug): classify() reports its type.
INTERNAL_ERROR = "InternalError"
# A kind that holds data has no archive hook configured, so it may not be deleted.
ARCHIVE_STEP_MISSING = "ArchiveStepMissing"
# The access point differs from the plan, and an access point cannot be changed.
ACCESS_POINT_IMMUTABLE = "AccessPointImmutable"
# MySQL refused a statement of the Database step (not a connection problem).
DATABASE_REFUSED = "DatabaseRefused"
# The Cognito hosted-domain prefix belongs to another pool or account.
DOMAIN_TAKEN = "DomainTaken"
# An older manifest holds the same tenantId: this one is Failed and owns nothing.
TENANT_ID_IN_USE = "TenantIdInUse"
# Another environment that ranks first claims a route this one's overlaps (same host, or
# one without a host, and a path prefix equal to or below the other's): nothing is built.
ROUTE_IN_USE = "RouteInUse"

# --- archive and restore (ArchiveError / ArchiveVerificationError; nothing is deleted) ---

# WPENV_ARCHIVE_BUCKET is not set: there is nowhere to archive to.
ARCHIVE_BUCKET_UNSET = "ArchiveBucketUnset"
# A gzip or tar stream read back from S3 is corrupt, truncated or has trailing data.
ARCHIVE_CORRUPT = "ArchiveCorrupt"
# An artefact would need more multipart-upload parts than S3 allows.
ARCHIVE_TOO_LARGE = "ArchiveTooLarge"
# An object read back from S3 has another checksum (sha256 or S3's own) than written.
ARCHIVE_CHECKSUM_MISMATCH = "ArchiveChecksumMismatch"
# An object read back from S3 has another size than written.
ARCHIVE_SIZE_MISMATCH = "ArchiveSizeMismatch"
# None of the MySQL or MariaDB client programs the archive runs is installed.
MYSQL_CLIENT_MISSING = "MySQLClientMissing"
# A table name the dump cannot quote safely (empty, too long, a NUL byte).
UNSUPPORTED_TABLE_NAME = "UnsupportedTableName"
# A dump statement the archive cannot rewrite safely (an event, a too long DEFINER line).
UNSUPPORTED_DUMP_STATEMENT = "UnsupportedDumpStatement"
# mysqldump failed.
DATABASE_DUMP_FAILED = "DatabaseDumpFailed"
# Loading the dump (into the scratch database or a restore target) failed.
DATABASE_LOAD_FAILED = "DatabaseLoadFailed"
# The dump restored into a scratch database does not match the database's checksums.
DATABASE_ARCHIVE_MISMATCH = "DatabaseArchiveMismatch"
# The database changed between the dump and its verification.
DATABASE_CHANGED_AFTER_DUMP = "DatabaseChangedAfterDump"
# A file or directory of the tenant could not be read into the tar.
FILES_ARCHIVE_FAILED = "FilesArchiveFailed"
# The tar read back from S3 does not list the directory's files and sizes.
FILES_ARCHIVE_MISMATCH = "FilesArchiveMismatch"
# Restore: there is no manifest.json at the archive location.
MANIFEST_MISSING = "ManifestMissing"
# Restore: manifest.json is not a manifest this version can read.
MANIFEST_UNREADABLE = "ManifestUnreadable"
# Restore: the archive holds no artefact of what was asked for.
NOTHING_TO_RESTORE = "NothingToRestore"
# Restore: the target database, its login or directory does not exist.
RESTORE_TARGET_MISSING = "RestoreTargetMissing"
# Restore: the target already holds tables or files (and no --force was given).
RESTORE_TARGET_NOT_EMPTY = "RestoreTargetNotEmpty"
# Restore: the restored database does not match the archive's checksums.
RESTORE_MISMATCH = "RestoreMismatch"
# Orphan cleanup: an orphan without a tenant tag cannot be archived under an owner.
ORPHAN_WITHOUT_TENANT = "OrphanWithoutTenant"
# Orphan cleanup: the orphan's kind holds no data the archiver knows how to keep.
NOTHING_TO_ARCHIVE = "NothingToArchive"
# Event: a pool's users and groups were exported before the pool was deleted.
USERS_EXPORTED = "UsersExported"
# Event: a database was dumped and verified before it was dropped.
DATABASE_ARCHIVED = "DatabaseArchived"
# Event: a tenant directory was archived and verified before it was removed.
FILES_ARCHIVED = "FilesArchived"

# --- lifecycle: the conditions and Events of provisioning, passes and deletion ----------

# Ready: a new manifest was accepted and waits to be provisioned.
PENDING_PROVISIONING = "PendingProvisioning"
# Ready: waiting for a provisioning slot.
QUEUED = "Queued"
# Event: a provision started.
PROVISIONING = "Provisioning"
# Ready or a group: resources exist but are not all ready yet.
PROGRESSING = "Progressing"
# A resource group: all of its resources are in place (or off as the spec asks).
READY = "Ready"
# Ready: all resources are in place and serving; Event: the first time it is.
ACTIVE = "Active"
# Event: a pass created a resource.
CREATED = "Created"
# Event: a pass updated a resource that differed from the plan.
UPDATED = "Updated"
# Event: a resource was removed because the spec turns it off.
REMOVED = "Removed"
# Event: a drift check created, updated or removed something changed by hand.
DRIFT_CORRECTED = "DriftCorrected"
# Ready: a failed first provision is being torn down (the teardown must be retried).
ROLLING_BACK = "RollingBack"
# Event: a resource was removed by a rollback; Rollout: ECS rolled back a revision.
ROLLED_BACK = "RolledBack"
# Event: a rollback stopped on an error and is tried again.
ROLLBACK_RETRYING = "RollbackRetrying"
# Rollout or Deprovision: under way.
IN_PROGRESS = "InProgress"
# Rollout: the serving revision is rolled out; Deprovision: archived and removed.
COMPLETED = "Completed"
# Rollout: the deployment of the serving revision failed.
FAILED = "Failed"
# Suspended: suspend was asked for while provisioning; applied once Active.
DEFERRED = "Deferred"
# Suspended and Ready: the service is scaled to zero as the spec asks.
SUSPENDED = "Suspended"
# Suspended: the service is being scaled to zero.
SUSPENDING = "Suspending"
# Suspended: the service is serving again after a suspend.
RESUMED = "Resumed"
# Suspended: the service's tasks are starting again after a suspend.
RESUMING = "Resuming"
# Event: a deleted manifest's tenantId belongs to another manifest; nothing removed.
NOTHING_TO_REMOVE = "NothingToRemove"
# Event: deletionPolicy Retain: everything was tagged and left in place.
RETAINED = "Retained"
# Ready and Event: the finalizer archives, then removes; Event: each step.
DEPROVISIONING = "Deprovisioning"
# Ready and Event: everything was archived and removed.
DEPROVISIONED = "Deprovisioned"
