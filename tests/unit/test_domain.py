"""Pure rules: the state machine, currencies, identifiers."""

import itertools

from payhook.domain import money
from payhook.domain.sessions import TERMINAL, Status, can_move, payment_status, sources
from payhook.ids import has_prefix, new_id


def test_terminal_states_are_final():
    for terminal, target in itertools.product(TERMINAL, Status):
        assert not can_move(terminal, target)


def test_the_allowed_moves():
    allowed = {(a, b) for a, b in itertools.product(Status, Status) if can_move(a, b)}
    assert allowed == {
        (Status.CREATED, Status.PENDING), (Status.CREATED, Status.PAID),
        (Status.CREATED, Status.FAILED), (Status.PENDING, Status.PAID),
        (Status.PENDING, Status.FAILED)}


def test_sources_are_the_compare_and_set_lists():
    assert sources(Status.PAID) == (Status.CREATED, Status.PENDING)
    assert sources(Status.PENDING) == (Status.CREATED,)
    assert sources(Status.CREATED) == ()


def test_payment_status_mirrors_status():
    assert [payment_status(s) for s in Status] == [
        "not_started", "processing", "completed", "failed"]


def test_currencies():
    assert money.is_fiat("usd") and money.is_fiat("dkk")
    assert not any(money.is_fiat(code) for code in ("USD", "xxx", "xts", "xau", "eth", ""))
    assert money.amount_limit("eur") == 99_999_999_999
    assert money.amount_limit("eth") == 10**30


def test_ids_stay_distinct_across_random_fetches_and_a_fork():
    """Random bytes are fetched a few KiB at a time: ids drawn across many fetches are all
    distinct, and a forked child never draws what its parent holds."""
    import os

    new_id("cs")  # the parent now holds a partly used buffer
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only writes its ids and leaves
        os.write(write, " ".join(new_id("cs") for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        childs = set(pipe.read().split())
    parents = {new_id("cs") for _ in range(20_000)}  # about 160 fetches
    assert len(parents) == 20_000 and len(childs) == 50
    assert not parents & childs


def test_ids_are_prefixed_and_carry_at_least_128_random_bits():
    ids = {new_id("cs") for _ in range(2000)}
    assert len(ids) == 2000
    for value in ids:
        assert has_prefix(value, "cs")
        assert len(value) - 3 >= 22  # 62**22 > 2**128
    assert not has_prefix("cs_short", "cs") and not has_prefix(new_id("in"), "cs")
