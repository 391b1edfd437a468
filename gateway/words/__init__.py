"""What a refusal's code says on a page, in the page's language: pages translate codes, never the service's English
sentences, so a reworded reason changes no page (issue 15, point 2).

Each submodule of this package holds the words of one area as `WORDS: dict[str, tuple[str, str]]`,
{code: (Japanese, English)}: identity.py, projects.py (with the pilots' gate requirements), sns.py, points.py,
request.py (the gateway's own and the generic codes), forms.py (what a form's field check found). This module merges
every submodule it finds, so a new area's file needs no registration here; a code with words in two files is a
programming error and stops the import. tests/gateway/test_words.py checks that every `Refusal` of
towntip.kernel.contracts has words.

Words are Japanese first: polite, short, for a resident, a company employee or municipal staff (です・ます). They
hold a `{placeholder}` only where the page fills it (a gate's `{party}`, a form field's `{field}`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping

from towntip.kernel.errors import CODE_PATTERN

Words = dict[str, tuple[str, str]]

# Refusals that mean "what you edited or signed is no longer the current version: reload it".
STALE = frozenset({"theme.stale", "proposal.stale", "pilot.stale", "agreement.stale", "case.stale"})

# What a page says of a refusal whose code has no words (yet): never the service's English on a Japanese page.
UNKNOWN = ("この操作はできませんでした（コード: {code}）。", "This could not be done (code: {code}).")


def merge(tables: Iterable[tuple[str, Mapping[str, tuple[str, str]]]]) -> Words:
    """One table of the (module name, WORDS) pairs; a code twice, a malformed code or an empty word is refused."""
    merged: Words = {}
    origin: dict[str, str] = {}
    for name, table in tables:
        for code, pair in table.items():
            if code in merged:
                raise ValueError(f"the code {code!r} has words in both {origin[code]} and {name}")
            if not CODE_PATTERN.match(code):
                raise ValueError(f"{name}: {code!r} is not a code of the form domain.what")
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(w, str) and w.strip()
                                                                        for w in pair)):
                raise ValueError(f"{name}: the words of {code!r} are not a (Japanese, English) pair of sentences")
            merged[code] = pair
            origin[code] = name
    return merged


def tables() -> list[tuple[str, Words]]:
    """(module name, WORDS) of every submodule of this package, by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        table = getattr(module, "WORDS", None)
        if not isinstance(table, dict):
            raise ValueError(f"{module.__name__} has no WORDS table")
        found.append((module.__name__, table))
    return found


class _Fill(dict[str, object]):
    def __missing__(self, key: str) -> str:  # a placeholder the caller did not fill stays empty
        return ""


def words(code: str | None, lang: str, /, *, default: str = "", **fill: object) -> str:
    """The code's words in the page's language, placeholders filled from `fill`; `default` when it has none."""
    return _say(code, lang, fill, default)


def _say(code: str | None, lang: str, fill: Mapping[str, object], default: str = "") -> str:
    found = WORDS.get(code or "")
    if found is None:
        return default
    return (found[1] if lang == "en" else found[0]).format_map(_Fill(fill))


def has_words(code: str | None) -> bool:
    return (code or "") in WORDS


def unknown(code: str, lang: str) -> str:
    """The generic sentence for a code without words, in the page's language, naming the code."""
    return (UNKNOWN[1] if lang == "en" else UNKNOWN[0]).format(code=code)


# The form checks whose words need a bound from the check's context.
_BOUNDS = {"form.too_short": "min_length", "form.too_few": "min_length",
           "form.too_long": "max_length", "form.too_many": "max_length"}


def invalid(exc: Exception, lang: str) -> str:
    """What a form's check (a pydantic ValidationError) found, in the page's language: the words of a contract's own
    coded check (errors.check_failed), else a sentence per labelled field (forms.FIELDS); for a problem with neither,
    the generic sentence (an English page also gets pydantic's own line for it, as before)."""
    from gateway.words.forms import FIELDS, KINDS

    lines: list[str] = []
    unlabelled: list[str] = []
    problems = exc.errors() if callable(getattr(exc, "errors", None)) else []  # type: ignore[attr-defined]
    for err in problems:
        loc = [p for p in err.get("loc", ()) if isinstance(p, str) and p != "body"]
        ctx = err.get("ctx") or {}
        kind = str(err.get("type", ""))
        if "." in kind and kind in WORDS:  # a contract's own coded check (errors.check_failed): its words
            line = _say(kind, lang, ctx)
            if line not in lines:
                lines.append(line)
            continue
        label = next((FIELDS[p] for p in loc if p in FIELDS), None)
        if label is None:
            unlabelled.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
            continue
        code = KINDS.get(kind, "form.invalid")
        if code in _BOUNDS and _BOUNDS[code] not in ctx:
            code = "form.invalid"
        line = _say(code, lang, {**ctx, "field": label[1] if lang == "en" else label[0]})
        if line not in lines:
            lines.append(line)
    if unlabelled or not lines:
        lines.append(words("form.invalid_input", lang))
        if lang == "en" and unlabelled:
            lines.append("(" + "; ".join(unlabelled) + ")")
    return " ".join(lines)


def is_stale(code: str | None) -> bool:
    return code in STALE


WORDS: Words = merge(tables())  # last: a submodule may import the names above
