"""The words of refusal codes now live in gateway/words (one file per area, merged): this module re-exports what
the portal's pages used from here, so there is one table, not two."""

from __future__ import annotations

from gateway.words import STALE, WORDS, is_stale, words

__all__ = ["STALE", "WORDS", "is_stale", "words"]
