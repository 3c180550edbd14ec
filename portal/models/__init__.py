"""The data model: the dispatcher's outbox models plus the portal's users and API keys.

Every row belongs to one tenant, and every query is scoped by it. Dispatcher code imports from
`dispatcher.models`; this package re-exports them for the portal.
"""

from dispatcher.models import Attempt, Delivery, Event, EventType, Subscription, Tenant
from portal.models.accounts import ApiKey, User
from portal.models.operator import OperatorKey, PortalLink

__all__ = [
    "ApiKey",
    "Attempt",
    "Delivery",
    "Event",
    "EventType",
    "OperatorKey",
    "PortalLink",
    "Subscription",
    "Tenant",
    "User",
]
