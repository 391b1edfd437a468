"""Contracts of the ledger endpoints of the points service (svc.<node>.points.admin.ledger.*, the operator's).

Postings made by features (taps, donations, courses, coupons) go through their own endpoints; these are for the
node's operator: manual entries and corrections (reversals), in batches, each with its own idempotency key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal

EP_LEDGER_POST = "admin.ledger.post"  # PostIn -> PostOut
EP_LEDGER_REVERSE = "admin.ledger.reverse"  # ReverseIn -> EntryResult
EP_LEDGER_BALANCE = "admin.ledger.balance"  # BalanceIn -> AccountBalance
EP_LEDGER_TOTALS = "admin.ledger.totals"  # {} -> Totals
EP_ASSET_RULES = "admin.assets.rules"  # AssetRulesIn -> AssetRules
EP_ASSET_SWEEP = "admin.assets.sweep"  # SweepIn -> Swept (the service also sweeps by itself every hour)

_IN = ConfigDict(extra="forbid", frozen=True)
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{8,200}$")]
Account = Annotated[str, StringConstraints(pattern=r"^(person|card|project|event|system):[A-Za-z0-9_.:-]{1,90}$")]
Asset = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")]
Text = Annotated[str, StringConstraints(max_length=200)]


class LegIn(BaseModel):
    model_config = _IN
    account: Account
    asset: Asset
    amount: int = Field(strict=True)  # an integer: 1.5 or "3" is refused, not rounded


class EntryIn(BaseModel):
    model_config = _IN
    key: Key  # made where the action happened; the same key again is a duplicate, with another payload a conflict
    kind: Kind = "adjustment"
    legs: Annotated[list[LegIn], Field(min_length=2, max_length=64)]
    memo: Text = ""


class PostIn(BaseModel):
    model_config = _IN
    actor: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "operator"
    entries: Annotated[list[EntryIn], Field(min_length=1, max_length=1000)]


class EntryResult(Frozen):
    key: str
    status: Literal["posted", "duplicate", "refused"]
    journal_id: str | None = None
    code: int | None = None  # for refused: the HTTP-like code (400, 409, 422)
    reason: str = ""


class PostOut(Frozen):
    results: list[EntryResult]


class ReverseIn(BaseModel):
    model_config = _IN
    original_key: Key
    key: Key
    actor: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "operator"
    memo: Text = ""


class BalanceIn(BaseModel):
    model_config = _IN
    account: Account
    asset: Asset = "machi-point"


class AccountBalance(Frozen):
    account: str
    asset: str
    balance: int


class Totals(Frozen):
    """Sum of all postings per asset: zero for each, always."""

    totals: dict[str, int]


class AssetRulesIn(BaseModel):
    """The node's rule for one asset: balances unused for `expiry_days` expire, or `demurrage_percent_per_month` of
    each balance goes each month (not both; neither: balances keep)."""

    model_config = _IN
    asset: Asset
    expiry_days: int | None = Field(default=None, ge=1, le=3650)
    demurrage_percent_per_month: int | None = Field(default=None, ge=1, le=50)


class AssetRules(Frozen):
    asset: str
    expiry_days: int | None
    demurrage_percent_per_month: int | None


class SweepIn(BaseModel):
    model_config = _IN
    at: datetime | None = None  # apply the rules as of this time (default: now)


class Swept(Frozen):
    expired: int
    demurrage: int


# ---- events (evt.<node>.points.entry_posted) ------------------------------------------------------------------
# The points service's ledger writer announces each posted entry (taps excepted: they announce TapRecorded).


class PostedLeg(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    asset: str
    amount: int


class EntryPosted(Event):
    """One journal entry posted to the ledger: its idempotency key, kind, journal id and legs (integer amounts,
    summing to zero per asset). `reverses`: the key of the entry it reverses, if it is a reversal."""

    SERVICE: ClassVar[str] = "points"

    key: str
    kind: str
    journal_id: str
    reverses: str | None = None
    memo: str = ""
    legs: list[PostedLeg]


# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

LEDGER_BAD_KEY = Refusal("ledger.bad_key", 400, "an idempotency key is 8-200 characters of A-Z a-z 0-9 _ . : @ -")
LEDGER_BAD_KIND = Refusal("ledger.bad_kind", 400, "an entry's kind is a short lower-case word")
LEDGER_BAD_LEGS = Refusal("ledger.bad_legs", 400, "an entry has 2 to 64 postings")
LEDGER_BAD_ACCOUNT = Refusal("ledger.bad_account", 400, "an account is kind:id, of a known kind")
LEDGER_UNKNOWN_ASSET = Refusal("ledger.unknown_asset", 422, "no such asset at this node")
LEDGER_BAD_AMOUNT = Refusal("ledger.bad_amount", 400, "an amount is a non-zero integer within the limit")
LEDGER_ACCOUNT_TWICE = Refusal("ledger.account_twice", 400, "an account appears twice for one asset in an entry")
LEDGER_UNBALANCED = Refusal("ledger.unbalanced", 400, "an entry's postings do not sum to zero per asset")
LEDGER_TEXT_TOO_LONG = Refusal("ledger.text_too_long", 400, "actor at most 100, memo at most 200 characters")
LEDGER_KEY_REUSED = Refusal("ledger.key_reused", 409, "the idempotency key was already used for another entry")
LEDGER_INSUFFICIENT = Refusal("ledger.insufficient_balance", 409, "an account would go below zero")
LEDGER_ENTRY_NOT_FOUND = Refusal("ledger.entry_not_found", 404, "no entry under that key")
LEDGER_REVERSAL_FINAL = Refusal("ledger.reversal_final", 422, "a reversal is not reversed: a new entry is posted")
LEDGER_ALREADY_REVERSED = Refusal("ledger.already_reversed", 409, "the entry was already reversed by another key")
ASSET_RULE_EXCLUSIVE = Refusal("asset.rule_exclusive", 422, "an asset has expiry or demurrage, not both")
ASSET_NOT_FOUND = Refusal("asset.not_found", 404, "no such asset")
