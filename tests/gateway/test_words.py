"""The portal translates refusal CODES, never sentences (issue 15, point 2): every refusal a contract declares has
Japanese and English words in gateway/words, no code has words twice, and a page shows a real refusal in its
language — never the service's English reason on a Japanese page."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from pydantic import BaseModel, Field, ValidationError

import gateway.words as w
import towntip.kernel.contracts as contracts
from gateway.api import generated
from gateway.portal.common import why
from identity.app import IdentityService
from services.sns.app import SnsService
from tests.projects.test_projects_portal import csrf_of, post
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel import errors
from towntip.kernel.contracts import pilots as pc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.errors import Refusal
from towntip.kernel.settings import ServiceSettings

# The points service's contract modules: their refusals get words in gateway/words/points.py, written apart from this
# package's other files. Until that file exists they are left out; once it does, they are checked like the rest.
POINTS_MODULES = {"points", "ledger", "coupons", "courses", "donations", "notebook"}
HAVE_POINTS_WORDS = importlib.util.find_spec("gateway.words.points") is not None
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")  # kana or kanji


def declared_refusals() -> dict[str, list[Refusal]]:
    """{contract module: its Refusal constants}, for every module of towntip.kernel.contracts."""
    found: dict[str, list[Refusal]] = {}
    for info in pkgutil.iter_modules(contracts.__path__):
        module = importlib.import_module(f"{contracts.__name__}.{info.name}")
        found[info.name] = [v for _, v in inspect.getmembers(module) if isinstance(v, Refusal)]
    return found


def test_the_contracts_declare_refusals_at_all() -> None:
    """The walk below finds what it checks (a walk that found nothing would pass anything)."""
    found = declared_refusals()
    assert {"identity", "projects", "sns"} <= {m for m, refusals in found.items() if refusals}
    assert sc.FRIEND_SELF in found["sns"] and sum(len(r) for r in found.values()) > 150


@pytest.mark.parametrize("module", sorted(declared_refusals()))
def test_every_declared_refusal_has_words(module: str) -> None:
    if module in POINTS_MODULES and not HAVE_POINTS_WORDS:
        pytest.skip("gateway/words/points.py (the points codes' words, written apart from this package's other "
                    "files) is not here yet: the points contract modules are checked once it is")
    missing = [r.code for r in declared_refusals()[module] if r.code not in w.WORDS]
    assert not missing, f"refusals of contracts/{module}.py without words in gateway/words: {', '.join(missing)}"


def test_the_generic_and_the_gateways_own_codes_have_words() -> None:
    codes = {*errors.GENERIC_CODES.values(), errors.generic_code(418), errors.generic_code(599),
             generated.NO_TOKEN, generated.PERSON_REQUIRED, generated.ROLE_MISSING}
    assert codes <= set(w.WORDS), codes - set(w.WORDS)


def test_the_gate_requirements_have_words_with_the_party() -> None:
    gates = [v for k, v in vars(pc).items() if k.startswith("GATE_")]
    assert len(gates) >= 7 and set(gates) <= set(w.WORDS)
    assert "市役所" in w.words(pc.GATE_PARTY_ROLE, "ja", party="市役所")
    assert w.words(pc.GATE_PARTY_ROLE, "en", party="the city") == "the split of roles must give 'the city' a role"


def test_words_are_japanese_first_and_an_english_line() -> None:
    for code, (ja, en) in w.WORDS.items():
        assert JAPANESE.search(ja), f"{code}: the first word is not Japanese: {ja!r}"
        assert not JAPANESE.search(en), f"{code}: the English line is not English: {en!r}"


def test_a_refusals_words_have_no_placeholder_a_page_cannot_fill() -> None:
    refusal_codes = {r.code for refusals in declared_refusals().values() for r in refusals}
    for code in refusal_codes & set(w.WORDS):
        assert "{" not in "".join(w.WORDS[code]), code


def test_no_code_has_words_in_two_modules() -> None:
    tables = w.tables()
    names = [name for name, _ in tables]
    assert {"gateway.words.identity", "gateway.words.projects", "gateway.words.sns", "gateway.words.request",
            "gateway.words.forms"} <= set(names)
    seen: dict[str, str] = {}
    for name, table in tables:
        for code in table:
            assert code not in seen, f"{code} has words in {seen[code]} and {name}"
            seen[code] = name
    assert seen.keys() == w.WORDS.keys()  # the merged table is exactly the modules' tables, nothing more


def test_the_merge_refuses_a_code_twice_and_malformed_words() -> None:
    one = {"thing.gone": ("なくなりました。", "It is gone.")}
    assert w.merge([("a", one)]) == one
    with pytest.raises(ValueError, match="thing.gone.*both a and b"):
        w.merge([("a", one), ("b", {"thing.gone": ("別の言葉", "other words")})])
    with pytest.raises(ValueError, match="not a code"):
        w.merge([("a", {"NotACode": ("言葉", "words")})])
    with pytest.raises(ValueError, match="pair"):
        w.merge([("a", {"thing.empty": ("", "words")})])


def test_a_new_areas_module_joins_the_merge_by_being_there(tmp_path, monkeypatch) -> None:
    """As gateway/words/points.py or bookings.py written elsewhere: no registration, and a code twice stops it."""
    (tmp_path / "zz_area.py").write_text('WORDS = {"zz.thing": ("できません。", "It cannot be done.")}\n')
    (tmp_path / "zz_again.py").write_text('WORDS = {"friend.self": ("二度目", "twice")}\n')
    monkeypatch.setattr(w, "__path__", [*w.__path__, str(tmp_path)])
    try:
        (tmp_path / "zz_again.py").rename(tmp_path / "_zz_again.py")  # a private name is not an area
        importlib.invalidate_caches()
        assert w.merge(w.tables())["zz.thing"] == ("できません。", "It cannot be done.")
        (tmp_path / "_zz_again.py").rename(tmp_path / "zz_again.py")
        importlib.invalidate_caches()
        with pytest.raises(ValueError, match="friend.self.*gateway.words.sns and gateway.words.zz_again"):
            w.merge(w.tables())
    finally:
        for name in ("zz_area", "zz_again"):
            sys.modules.pop(f"gateway.words.{name}", None)
            vars(w).pop(name, None)


def test_why_shows_the_words_of_the_code_in_the_pages_language() -> None:
    exc = sc.FRIEND_SELF("you cannot befriend yourself")
    assert why(exc, "ja") == w.words(sc.FRIEND_SELF.code, "ja") == "自分自身にはトモダチ申請できません。"
    assert why(exc, "en") == w.words(sc.FRIEND_SELF.code, "en")
    # a code without words (yet): a generic sentence naming the code, never the English reason on a Japanese page
    odd = errors.Conflict("the widget is frobnicated", error_code="widget.frobnicated")
    assert why(odd, "ja") == "この操作はできませんでした（コード: widget.frobnicated）。"
    assert why(odd, "en") == "the widget is frobnicated"
    # a generic code: its generic words
    assert why(errors.NotFound("no course xyz"), "ja") == w.words("request.not_found", "ja")
    assert why(errors.Unavailable("the bus is down"), "ja") == w.words("service.unavailable", "ja")
    # the page's own reading of a form (a ValueError): the generic sentence
    assert why(ValueError("invalid literal for int()"), "ja") == w.words("form.invalid_input", "ja")


class _Form(BaseModel):
    title: str = Field(min_length=2, max_length=5)
    categories: list[str] = Field(min_length=1)
    price: int = 0
    secret_knob: int = 0


def _check(**values: Any) -> ValidationError:
    try:
        _Form(**values)
    except ValidationError as exc:
        return exc
    raise AssertionError("no validation error")


def test_a_forms_failed_check_names_the_fields_label() -> None:
    exc = _check(title="x", categories=[], price="many")
    ja = why(exc, "ja")
    assert "「タイトル」は2文字以上で入力してください。" in ja and "「カテゴリ」を1つ以上選んでください。" in ja
    assert "「価格」には数値を入力してください。" in ja and "String should" not in ja
    assert "'Title' needs at least 2 characters." in why(exc, "en")
    assert why(_check(title="toolong", categories=["a"]), "ja") == "「タイトル」は5文字以内で入力してください。"
    # a field the portal has no label for: the generic sentence (the English page adds pydantic's own line)
    unlabelled = _check(title="ok", categories=["a"], secret_knob="x")
    assert why(unlabelled, "ja") == w.words("form.invalid_input", "ja")
    assert "secret_knob" in why(unlabelled, "en")


# ---- a page over HTTP: the identity and sns services on a real nats-server, the gateway app in-process -----------

NODE = "tsurugashima"
BASE = "http://portal.test"
PW = "correct horse battery"


@pytest.fixture
async def app(nats_server, tmp_path) -> AsyncIterator[Any]:
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=BASE))
    sns = SnsService(ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url,
                                     data_dir=str(tmp_path / "sns"), public_url=BASE))
    async with started(ident, sns):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, [("hanako", "hanako さん", None)])
        await nc.close()
        gateway = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=BASE)
        async with gateway.router.lifespan_context(gateway):
            yield gateway


async def _hanako(app: Any) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False)
    r = await post(client, "/login", {"login": "hanako", "password": PW, "next": "/communities"})
    assert r.status_code == 303, r.text
    return client


async def test_a_refusal_on_a_page_is_in_the_pages_language(app: Any) -> None:
    hanako = await _hanako(app)
    opened = await post(hanako, "/communities", {"name": "菜園の会", "categories": "npo-3"}, form_page="/communities")
    assert opened.status_code == 303

    # The name is taken (community.name_taken): the Japanese words, not the service's English reason.
    taken = await post(hanako, "/communities", {"name": "菜園の会", "categories": "npo-1"}, form_page="/communities")
    assert taken.status_code == 409
    assert w.words(sc.COMMUNITY_NAME_TAKEN.code, "ja") in taken.text
    assert "exists already" not in taken.text and "community named" not in taken.text

    # Oneself as a friend (friend.self), in Japanese, then with the English language choice in English.
    myself = await post(hanako, "/friends/request", {"handle": f"hanako@{NODE}"}, form_page="/friends")
    assert myself.status_code == 400 and "自分自身にはトモダチ申請できません。" in myself.text
    assert "befriend" not in myself.text
    hanako.cookies.set("tt_lang", "en")
    page = await hanako.get("/friends")
    assert '<html lang="en"' in page.text
    english = await hanako.post("/friends/request", data={"csrf": csrf_of(page), "handle": f"hanako@{NODE}"})
    assert english.status_code == 400 and w.words(sc.FRIEND_SELF.code, "en") in english.text
    assert "自分自身" not in english.text

    # A form's failed check names the field by its label, in the page's language.
    hanako.cookies.set("tt_lang", "ja")
    bad = await post(hanako, "/communities", {"name": "菜", "description": ""}, form_page="/communities")
    assert bad.status_code == 400 and "「カテゴリ」を1つ以上選んでください。" in bad.text
    assert "「名前」は2文字以上で入力してください。" in bad.text and "should have at least" not in bad.text


def test_every_contract_check_code_has_words() -> None:
    """A contract's own check (`errors.check_failed("x.y", ...)` in a validator) reaches a form page as its code: each
    such code in the contracts has words, so no form shows the contract's English to a Japanese page."""
    import pathlib

    import towntip.kernel.contracts as contracts

    found = set()
    for path in pathlib.Path(contracts.__file__).parent.glob("*.py"):
        found |= set(re.findall(r'check_failed\(\s*"([a-z_.]+)"', path.read_text(encoding="utf-8")))
    assert len(found) >= 15, sorted(found)
    assert sorted(c for c in found if not w.has_words(c)) == []
