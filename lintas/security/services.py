"""What each platform service may do on the broker: least privilege, read off their code.

The workers' and the sink's topics follow ``LINTAS_STREAMS__TOPIC_PREFIX`` (empty in
production); group ids, directory topics and the faust app id follow their settings, so the
rules match what the services really use::

    svc-gateway    Write opd.*                           publishes for the applications whose
                   Read  lintas.directory                API keys it checks
    svc-worker     Read  opd.*                           faust's source topics
                   Write, Create  lintas.canonical.*, lintas.deliver.*  (creates the outputs
                                                         of event types and subscribers that
                                                         appear while it runs)
                   Write lintas.dlq, lintas.metrics
                   Read  lintas.directory                routing rules
                   Create, Read, Write  <app id>-*       faust's internal topics (changelogs)
                   Read  group <app id>
    svc-sink       Read  lintas.canonical.*, group lintas-store;  Write lintas.dlq
    svc-deliver    Read, Write, Create  lintas.deliver.*  (reads delivery topics, writes and
                                                         creates lintas.deliver.<name>.dlq)
                   Read  group lintas-deliver, lintas.directory
    svc-portal     Read  opd.*, lintas.*                 dashboard counts, dead letters
                   Write opd.*, lintas.canonical.*       dead-letter replay (operators only)
                   Write lintas.directory                directory edits in the portal
                   Describe every group                  consumer lag on the dashboard
    svc-directory  Write lintas.directory                the directory's outbox publisher

Creating, growing and configuring topics (``lintas topics sync``) and managing ACLs and
credentials (``lintas security sync``) stay with the platform's admin principal.
"""

from __future__ import annotations

from dataclasses import dataclass

from lintas.settings import Settings
from lintas.topics import DIRECTORY_TOPIC, DLQ_TOPIC, METRICS_TOPIC

from .acls import AclRule, Grant, GrantKind, Operation, Pattern, ResourceKind
from .principals import PrincipalNames, ServiceRole

__all__ = ["ServiceTopology", "service_grants"]

_R, _W, _C, _D = Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE
_TOPIC, _GROUP = ResourceKind.TOPIC, ResourceKind.GROUP
_LIT, _PRE = Pattern.LITERAL, Pattern.PREFIXED


@dataclass(frozen=True, kw_only=True)
class ServiceTopology:
    """The names the services use: topic prefix, groups, the faust app id.

    Usage::

        topology = ServiceTopology.from_settings(settings)
        grants = service_grants(topology, PrincipalNames())
    """

    topic_prefix: str = ""
    streams_app_id: str = "lintas-streams"
    sink_group: str = "lintas-store"
    deliver_group: str = "lintas-deliver"
    gateway_directory_topic: str = DIRECTORY_TOPIC
    deliver_directory_topic: str = DIRECTORY_TOPIC
    portal_directory_topic: str = DIRECTORY_TOPIC

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceTopology:
        return cls(
            topic_prefix=settings.streams.topic_prefix,
            streams_app_id=settings.streams.app_id,
            sink_group=settings.sink.group_id,
            deliver_group=settings.deliver.group_id,
            gateway_directory_topic=settings.gateway.directory_topic,
            deliver_directory_topic=settings.deliver.directory_topic,
            portal_directory_topic=settings.portal.directory_topic,
        )


def _service_rules(
    role: ServiceRole, t: ServiceTopology
) -> list[tuple[ResourceKind, str, Pattern, tuple[Operation, ...]]]:
    # Only the workers and the sink follow the streams prefix; the others use their own
    # settings' topics, unprefixed, as their code does.
    p = t.topic_prefix
    opd, canonical, deliver = "opd.", "lintas.canonical.", "lintas.deliver."
    match role:
        case ServiceRole.GATEWAY:
            return [
                (_TOPIC, opd, _PRE, (_W,)),
                (_TOPIC, t.gateway_directory_topic, _LIT, (_R,)),
            ]
        case ServiceRole.WORKER:
            return [
                (_TOPIC, p + opd, _PRE, (_R,)),
                (_TOPIC, p + canonical, _PRE, (_W, _C)),
                (_TOPIC, p + deliver, _PRE, (_W, _C)),
                (_TOPIC, p + DLQ_TOPIC, _LIT, (_W,)),
                (_TOPIC, p + METRICS_TOPIC, _LIT, (_W,)),
                (_TOPIC, p + DIRECTORY_TOPIC, _LIT, (_R,)),
                # faust names its internal topics <app id>-<name>-changelog and creates them
                # itself; the trailing '-' keeps another app id that merely starts with this
                # one out.
                (_TOPIC, f"{t.streams_app_id}-", _PRE, (_C, _R, _W)),
                (_GROUP, t.streams_app_id, _LIT, (_R,)),
            ]
        case ServiceRole.SINK:
            return [
                (_TOPIC, p + canonical, _PRE, (_R,)),
                (_TOPIC, p + DLQ_TOPIC, _LIT, (_W,)),
                (_GROUP, t.sink_group, _LIT, (_R,)),
            ]
        case ServiceRole.DELIVER:
            return [
                (_TOPIC, deliver, _PRE, (_R, _W, _C)),
                (_TOPIC, t.deliver_directory_topic, _LIT, (_R,)),
                (_GROUP, t.deliver_group, _LIT, (_R,)),
            ]
        case ServiceRole.PORTAL:
            return [
                (_TOPIC, opd, _PRE, (_R, _W)),
                (_TOPIC, "lintas.", _PRE, (_R,)),
                (_TOPIC, canonical, _PRE, (_W,)),
                (_TOPIC, t.portal_directory_topic, _LIT, (_R, _W)),
                # '*' as a literal name is Kafka's wildcard: every group, for lag figures.
                (_GROUP, "*", _LIT, (_D,)),
            ]
        case ServiceRole.DIRECTORY:
            return [(_TOPIC, DIRECTORY_TOPIC, _LIT, (_W,))]


def service_grants(topology: ServiceTopology, names: PrincipalNames) -> list[Grant]:
    """One grant per :class:`ServiceRole`, with the rules in the module docstring."""
    grants = []
    for role in ServiceRole:
        user = names.service(role)
        rules = frozenset(
            AclRule(user, kind, name, pattern, op)
            for kind, name, pattern, ops in _service_rules(role, topology)
            for op in ops
        )
        grants.append(Grant(user=user, kind=GrantKind.SERVICE, owner=role.value, rules=rules))
    return grants
