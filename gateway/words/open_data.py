"""What a page says for each refusal of the open data and usage figures (contracts/open_data.py)."""

WORDS: dict[str, tuple[str, str]] = {
    "usage.staff_only": ("利用状況の集計は職員のみが見られます。", "Only the town's staff can see the usage figures."),
}
