"""Rate limits several web processes share: events counted per key in fixed
windows, in the state database."""

from __future__ import annotations

from feedpub.store.database import Database


class RateCounts(Database):
    def count_event(self, bucket: str, key: str, now: float, window: float) -> int:
        """Count one event of ``key`` in ``bucket``; how many its current window
        of ``window`` seconds (begun by its first event) holds, this one included.
        ``now`` is wall-clock time, which every machine shares."""
        with self._transaction() as db:
            return int(
                db.scalar(
                    "INSERT INTO rate_limits (bucket, key, window_start, count)"
                    " VALUES (:bucket, :key, :now, 1) ON CONFLICT (bucket, key) DO UPDATE SET"
                    " count = CASE WHEN rate_limits.window_start <= :horizon THEN 1"
                    " ELSE rate_limits.count + 1 END,"
                    " window_start = CASE WHEN rate_limits.window_start <= :horizon THEN :now"
                    " ELSE rate_limits.window_start END RETURNING count",
                    bucket=bucket,
                    key=key,
                    now=now,
                    horizon=now - window,
                )
            )

    def forget_counts(self, bucket: str, before: float) -> None:
        """Drop ``bucket``'s windows begun before ``before``: they are over."""
        with self._transaction() as db:
            db.run(
                "DELETE FROM rate_limits WHERE bucket = :bucket AND window_start < :before",
                bucket=bucket,
                before=before,
            )
