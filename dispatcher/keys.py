"""Re-encrypting every stored signing secret with the first encryption key.

After a new key is put first in HOOKLINE_ENCRYPTION_KEYS, tokens the old keys wrote still
decrypt, but the old keys cannot be dropped until every token is rewritten: `reencrypt_all`
(`flask secrets re-encrypt`) does that in bounded batches, one transaction each, and says which
tokens no configured key can read, so nobody drops a key that something still needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from sqlalchemy import select, update

from dispatcher import signing
from dispatcher.models import Subscription
from dispatcher.store import db

DEFAULT_BATCH_SIZE = 500
# A row rewritten by the portal under our feet (a secret rotation) is read again this often.
MAX_TRIES = 3


@dataclass
class ReencryptReport:
    """What a re-encryption run did, by subscription."""

    rewritten: int = 0
    already_current: int = 0
    unreadable: list[str] = field(default_factory=list)
    # Ids whose secrets kept changing while we tried; run again.
    contended: list[str] = field(default_factory=list)
    batches: int = 0

    @property
    def total(self) -> int:
        return self.rewritten + self.already_current + len(self.unreadable) + len(self.contended)

    @property
    def complete(self) -> bool:
        """True when every token is now under the first key, so the old keys may go."""
        return not self.unreadable and not self.contended


def reencrypt_all(batch_size: int = DEFAULT_BATCH_SIZE) -> ReencryptReport:
    """Rewrite every subscription's secrets token under the first key.

    Walks subscriptions by id (keyset, never loading more than `batch_size` rows) and commits
    once per batch, so a long run holds no lock for long and can be stopped and run again."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = ReencryptReport()
    after = ""
    while True:
        rows = db.session.execute(
            select(Subscription.id, Subscription.secrets_encrypted)
            .where(Subscription.id > after)
            .order_by(Subscription.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return report
        for subscription_id, token in rows:
            _reencrypt_one(subscription_id, token, report)
        db.session.commit()
        report.batches += 1
        after = rows[-1].id


def _reencrypt_one(subscription_id: str, token: str | None, report: ReencryptReport) -> None:
    """Rewrite one token, only if it is still the one we read (compare-and-set): a secret
    rotated meanwhile is never overwritten with the older secrets."""
    for _ in range(MAX_TRIES):
        if token is None:
            return  # deleted meanwhile: nothing left to protect
        try:
            fresh = signing.reencrypted(token)
        except InvalidToken:
            report.unreadable.append(subscription_id)
            return
        if fresh is None:
            report.already_current += 1
            return
        swapped = db.session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.secrets_encrypted == token)
            .values(secrets_encrypted=fresh)
            .execution_options(synchronize_session=False)
        ).rowcount
        if swapped:
            report.rewritten += 1
            return
        token = db.session.scalar(
            select(Subscription.secrets_encrypted).where(Subscription.id == subscription_id)
        )
    report.contended.append(subscription_id)
