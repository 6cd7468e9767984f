"""What the webhooks remember: the tokens of signed requests already taken (a
replay is refused), and whether an event was recorded before."""

from __future__ import annotations

from datetime import datetime

from feedpub.store.database import Database, _stamp


class WebhookMemory(Database):
    def remember_webhook_token(self, token: str, now: datetime, forget_before: datetime) -> bool:
        """Note ``token`` as seen at ``now``; False when it was seen already (the
        request is a replay). Tokens seen before ``forget_before`` are dropped:
        a replay of one would be refused by its signed time."""
        with self._transaction() as db:
            db.run(
                "DELETE FROM webhook_tokens WHERE seen_at < :before", before=_stamp(forget_before)
            )
            inserted = db.run(
                "INSERT INTO webhook_tokens (token, seen_at) VALUES (:token, :now)"
                " ON CONFLICT DO NOTHING",
                token=token,
                now=_stamp(now),
            )
        return bool(inserted)

    def forget_webhook_token(self, token: str) -> None:
        """Forget ``token``, so that the provider's retry of a request that could
        not be recorded is taken."""
        with self._transaction() as db:
            db.run("DELETE FROM webhook_tokens WHERE token = :token", token=token)
