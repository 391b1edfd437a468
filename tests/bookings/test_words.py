"""Every refusal code of the bookings service has its words, Japanese and English (gateway/words/bookings.py), and
no word is for a code the service does not have."""

from __future__ import annotations

from gateway.words.bookings import WORDS
from towntip.kernel.contracts import bookings as c
from towntip.kernel.errors import Refusal


def test_every_bookings_code_has_japanese_and_english_words() -> None:
    codes = {v.code for v in vars(c).values() if isinstance(v, Refusal)}
    assert codes == {r.code for r in c.REFUSALS}, "a refusal is missing from contracts.bookings.REFUSALS"
    assert set(WORDS) == codes
    for code, (ja, en) in WORDS.items():
        assert ja and en and ja != en, code
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in ja), f"{code}: not Japanese"
