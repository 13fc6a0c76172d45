"""The tree has one writer of a session's status and one of outbox rows: a scan of src/."""

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "payhook"

# An UPDATE of checkout_sessions (SQLAlchemy, under either of the table's import names, or SQL).
SESSION_UPDATE = re.compile(r"update\(\s*(checkout_sessions|sessions)\s*\)|"
                            r"UPDATE checkout_sessions", re.IGNORECASE)
# An INSERT into outbox_entries (SQLAlchemy, under either of its import names, or SQL).
OUTBOX_INSERT = re.compile(r"\b(outbox_entries|outbox)\.insert\(|"
                           r"insert_ignoring_conflicts\(\s*conn,\s*(outbox_entries|outbox)\s*\)|"
                           r"insert_rows\(\s*conn,\s*(outbox_entries|outbox)\b|"
                           r"INSERT INTO outbox_entries", re.IGNORECASE)


def writers(pattern: re.Pattern[str]) -> set[str]:
    return {str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py")
            if pattern.search(path.read_text())}


def test_a_session_status_is_written_by_the_mover_alone():
    assert writers(SESSION_UPDATE) == {"db/sessions.py"}


def test_outbox_rows_are_inserted_by_the_store_alone():
    assert writers(OUTBOX_INSERT) == {"outbox/store.py"}
