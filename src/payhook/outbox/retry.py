"""The retry policy as a value: given the attempts made, when to try next — or give up."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float = 6 * 3600
    jitter: float = 0.1  # ±10 %, so rows that failed together do not retry together

    def next_attempt(self, attempts: int, max_attempts: int, now: datetime) -> datetime | None:
        """``attempts`` made so far (≥ 1); ``None`` once they are used up (the row is dead)."""
        if attempts >= max_attempts:
            return None
        delay = min(self.cap_seconds, self.base_seconds * 2 ** (attempts - 1))
        delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return now + timedelta(seconds=delay)
