"""The rules of following the chain from a cursor (payhook.domain.watching), pure."""

from payhook.domain.watching import (
    MAX_RECIPIENT_TOPICS,
    MAX_STEP_BLOCKS,
    START_BLOCKS,
    Block,
    Cursor,
    Find,
    NativeTransfer,
    TokenTransfer,
    Watched,
    finds,
    follows,
    rewind_to,
    start_at,
    step,
    topic,
)

TOKEN, OTHER_TOKEN = "0x" + "70" * 20, "0x" + "71" * 20
A, B, C = ("0x" + digit * 40 for digit in "abc")


def chain_of(first: int, count: int, parent: str) -> list[Block]:
    blocks = []
    for number in range(first, first + count):
        blocks.append(Block(number, f"0xh{number}", parent))
        parent = blocks[-1].hash
    return blocks


def test_steps_are_bounded_and_end_at_the_head():
    assert step(Cursor(10, "0xh10"), 10) is None
    assert step(Cursor(10, "0xh10"), 9) is None  # a node behind: wait, do not rewind
    assert step(Cursor(10, "0xh10"), 11) == (11, 11)
    assert step(Cursor(10, "0xh10"), 10 + 3 * MAX_STEP_BLOCKS) == (11, 10 + MAX_STEP_BLOCKS)


def test_a_first_start_is_a_window_before_the_head():
    assert start_at(10_000) == 10_000 - START_BLOCKS
    assert start_at(3) == 0


def test_blocks_follow_the_cursor_only_through_its_own_block():
    cursor = Cursor(10, "0xh10")
    assert follows(cursor, chain_of(11, 5, "0xh10"))
    assert not follows(cursor, chain_of(11, 5, "0xother"))  # reorganised below the cursor
    moved = chain_of(11, 5, "0xh10")
    moved[3] = Block(14, "0xh14", "0xnot-13")  # the chain changed while it was read
    assert not follows(cursor, moved)
    ends = [chain_of(11, 1, "0xh10")[0], Block(20, "0xh20", "0xh19")]  # only first and last
    assert follows(cursor, ends)
    assert not follows(cursor, [])


def test_a_reorg_steps_back_as_deep_as_the_confirmations_never_past_the_head():
    assert rewind_to(Cursor(100, "0x"), 120, 12) == 88
    assert rewind_to(Cursor(100, "0x"), 95, 12) == 83
    assert rewind_to(Cursor(5, "0x"), 120, 12) == 0
    assert rewind_to(Cursor(100, "0x"), 120, 0) == 99


def test_finds_match_each_asset_to_its_own_sessions_once():
    watched = Watched(native={A: "cs_a"}, tokens={TOKEN: {B: "cs_b"}})
    blocks = [Block(1, "0x1", "0x0", (NativeTransfer("0xt1", A, 5), NativeTransfer("0xt1", A, 5),
                                      NativeTransfer("0xt2", B, 5),  # eth to a token session
                                      NativeTransfer("0xt3", A, 0)))]
    transfers = [TokenTransfer("0xt4", TOKEN, B, 7), TokenTransfer("0xt5", OTHER_TOKEN, B, 7),
                 TokenTransfer("0xt6", TOKEN, A, 7), TokenTransfer("0xt7", TOKEN, B, 0),
                 TokenTransfer("0xt8", TOKEN, C, 7)]
    assert finds(blocks, transfers, watched) == [Find("cs_a", "0xt1"), Find("cs_b", "0xt4")]


def test_many_token_addresses_are_filtered_here_not_by_the_node():
    few = Watched(native={}, tokens={TOKEN: {A: "cs_a"}, OTHER_TOKEN: {B: "cs_b"}})
    assert few.token_recipients() == [A, B]
    many = Watched(native={}, tokens={TOKEN: {f"0x{index:040x}": f"cs_{index}"
                                              for index in range(MAX_RECIPIENT_TOPICS + 1)}})
    assert many.token_recipients() is None


def test_an_address_as_a_topic_is_left_padded_to_32_bytes():
    assert topic("0x" + "AB" * 20) == "0x" + "00" * 12 + "ab" * 20
