"""The data model: every row belongs to one tenant, and every query is scoped by it."""

from portal.models.accounts import ApiKey, Tenant, User
from portal.models.webhooks import Attempt, Delivery, Event, EventType, Subscription

__all__ = ["ApiKey", "Attempt", "Delivery", "Event", "EventType", "Subscription", "Tenant", "User"]
