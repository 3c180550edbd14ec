"""The outbox's data model: tenants, event types, endpoints, events, deliveries, attempts.

Every row belongs to one tenant, and every query is scoped by it. The portal adds its own
models (users, API keys) on the same `Base`.
"""

from dispatcher.models.base import Base
from dispatcher.models.tenants import Tenant
from dispatcher.models.webhooks import Attempt, Delivery, Event, EventType, Subscription

__all__ = ["Attempt", "Base", "Delivery", "Event", "EventType", "Subscription", "Tenant"]
