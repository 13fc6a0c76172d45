"""The one source of 'now': timezone-aware UTC."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC, as every answer carries times."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def as_utc(moment: datetime) -> datetime:
    """A timestamp read from any driver, as timezone-aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
