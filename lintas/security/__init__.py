"""Security and tenancy on the broker: principals, ACLs, SCRAM credentials, the local CA.

Every application, subscriber and platform service has its own Kafka principal with only
the ACLs its job needs, computed from the directory::

    from lintas.security import SecurityContext, load_directory, sync_security

    ctx = SecurityContext.from_settings(settings)
    plan = sync_security(ctx, endpoints.kafka, await load_directory(settings), dry_run=True)
    print("\\n".join(plan.lines()))

See ``docs/security.md`` for the threat model and the controls.
"""

from .acls import (
    AclPlan,
    AclRule,
    Grant,
    GrantKind,
    Operation,
    Pattern,
    ResourceKind,
    application_grant,
    application_user,
    desired_grants,
    managed_users,
    needs_principal,
    plan_acls,
    subscriber_grant,
    subscriber_group,
)
from .credentials import (
    DEFAULT_SCRAM_ITERATIONS,
    IssuedCredential,
    issue_credential,
    new_password,
)
from .exceptions import (
    AdminCallFailed,
    AdminRefused,
    AuthenticationRefused,
    BrokerUnreachable,
    NoPrincipal,
    SecurityApplyFailed,
    SecurityError,
    TlsMaterialError,
)
from .k8s import dump_manifests, export_kafka_users, kafka_user, kafka_users, rules_of
from .principals import PrincipalNames, ServiceRole, principal_of, user_of
from .reconcile import SecurityPlan, apply_security, plan_security, sync_principal
from .services import ServiceTopology, service_grants
from .sync import (
    SecurityContext,
    deprovision,
    load_directory,
    provision,
    sync_entry,
    sync_security,
)
from .tls import LocalTls, TlsFiles, ensure_local_tls

__all__ = [
    # principals
    "PrincipalNames",
    "ServiceRole",
    "principal_of",
    "user_of",
    # desired ACLs (pure)
    "AclPlan",
    "AclRule",
    "Grant",
    "GrantKind",
    "Operation",
    "Pattern",
    "ResourceKind",
    "ServiceTopology",
    "application_grant",
    "application_user",
    "desired_grants",
    "managed_users",
    "needs_principal",
    "plan_acls",
    "service_grants",
    "subscriber_grant",
    "subscriber_group",
    # reconciling the broker
    "SecurityContext",
    "SecurityPlan",
    "apply_security",
    "deprovision",
    "load_directory",
    "plan_security",
    "provision",
    "sync_entry",
    "sync_principal",
    "sync_security",
    # credentials
    "DEFAULT_SCRAM_ITERATIONS",
    "IssuedCredential",
    "issue_credential",
    "new_password",
    # Kubernetes
    "dump_manifests",
    "export_kafka_users",
    "kafka_user",
    "kafka_users",
    "rules_of",
    # TLS
    "LocalTls",
    "TlsFiles",
    "ensure_local_tls",
    # errors
    "AdminCallFailed",
    "AdminRefused",
    "AuthenticationRefused",
    "BrokerUnreachable",
    "NoPrincipal",
    "SecurityApplyFailed",
    "SecurityError",
    "TlsMaterialError",
]
