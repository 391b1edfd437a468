"""What a refusal's code (or a gate's requirement code) says on a page, in the page's language. Pages translate
codes, never the service's English sentences: a reworded reason changes no page."""

from __future__ import annotations

from towntip.kernel.contracts import pilots as pc

# {code: (Japanese, English)}; `{party}` is filled from the requirement.
WORDS: dict[str, tuple[str, str]] = {
    pc.GATE_PARTY_ROLE: ("役割分担で「{party}」の役割を決める", "the split of roles must give '{party}' a role"),
    pc.GATE_MILESTONE: ("スケジュールにマイルストーンを1つ以上登録する",
                        "at least one milestone in the schedule is needed"),
    pc.GATE_KPI: ("KPIを1つ以上設定する", "at least one KPI is needed"),
    pc.GATE_PLAN: ("実証計画書を保存する", "the pilot plan must be saved"),
    pc.GATE_AGREEMENT_SIGNED: ("協定・覚書を1つ以上、全参加者が最新の版に署名する",
                               "at least one agreement must be signed by every party in its current version"),
    pc.GATE_REPORT: ("実証報告書を保存する", "the report must be saved"),
    pc.GATE_DECISION: ("次年度判断を確定する", "the next-year decision must be made"),
}

# Refusals that mean "what you edited or signed is no longer the current version: reload it".
STALE = frozenset({"theme.stale", "proposal.stale", "pilot.stale", "agreement.stale", "case.stale"})


def words(code: str, lang: str, *, party: str = "", default: str = "") -> str:
    """The code in the page's language; `default` (the service's own sentence) when the table has no words."""
    found = WORDS.get(code)
    if found is None:
        return default
    return (found[1] if lang == "en" else found[0]).format(party=party)


def is_stale(code: str | None) -> bool:
    return code in STALE
