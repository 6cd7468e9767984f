"""What a bounce, a complaint or an unsubscribe does to a subscriber: the list's
policy, as a pure function of the event and what the store knows.

- One hard bounce marks the subscriber ``bounced``.
- ``limit`` soft bounces within ``days`` do the same; fewer are only counted.
- A complaint unsubscribes at once, and the address stays suppressed for good:
  no ``--force`` brings it back, only the person's own confirmed sign-up.
- An unsubscribe reported by the sending service unsubscribes.

Each of the first three suppresses the address: it stays off the list even if
its subscriber is deleted, and adding it again needs ``--force``.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedpub.model import ListEventKind

# Why an address is suppressed, the strongest first: a stronger reason replaces
# a weaker one, never the other way round.
SUPPRESSION_REASONS = ("complained", "bounced", "unsubscribed")


@dataclass(frozen=True, slots=True)
class SoftBouncePolicy:
    """``delivery.soft_bounce_limit`` soft bounces within ``delivery.soft_bounce_days``
    make a hard one."""

    limit: int = 3
    days: int = 30


@dataclass(frozen=True, slots=True)
class Consequence:
    """``status``: the subscriber's new status (None: as it is); ``suppress``: the
    reason to suppress the address for (None: not); ``says``: one line."""

    status: str | None
    suppress: str | None
    says: str


def consequence(kind: ListEventKind, recent_soft: int, policy: SoftBouncePolicy) -> Consequence:
    """What an event of ``kind`` does; ``recent_soft`` counts the address's soft
    bounces within ``policy.days``, this one included."""
    if kind == "hard":
        return Consequence("bounced", "bounced", "hard bounce: marked bounced")
    if kind == "soft":
        counted = f"soft bounce {recent_soft} of {policy.limit} within {policy.days} days"
        if recent_soft >= policy.limit:
            return Consequence("bounced", "bounced", f"{counted}: marked bounced")
        return Consequence(None, None, counted)
    if kind == "complaint":
        return Consequence("unsubscribed", "complained", "complaint: unsubscribed for good")
    return Consequence("unsubscribed", "unsubscribed", "unsubscribed at the sending service")


def stronger(reason: str, than: str | None) -> bool:
    """Whether suppressing for ``reason`` replaces a suppression for ``than``."""
    if than is None:
        return True
    return SUPPRESSION_REASONS.index(reason) < SUPPRESSION_REASONS.index(than)
