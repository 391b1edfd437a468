"""The documents residents keep: the donation receipt, the activity notebook and the course certificate as PDFs made
by ReportLab with the Japanese font embedded (Latin text, figures and dates extract whole: issue 16), and the
certificate's signature through joserfc, byte for byte what the hand-made signer issued before it."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pypdf
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.portal.courses import certificate_pdf_bytes
from services.points.documents import certificate
from services.points.documents.certificate import b64u, b64u_decode, check_signature, sign
from services.points.documents.notebook import notebook_pdf
from services.points.documents.receipt import ReceiptData, receipt
from services.points.notebook.service import HEAD, WORDS
from towntip.kernel import pdf
from towntip.kernel.contracts import courses as c

# ---- what every document must be --------------------------------------------------------------------------------


def read(data: bytes) -> pypdf.PdfReader:
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    return pypdf.PdfReader(io.BytesIO(data), strict=True)


def assert_font_embedded(reader: pypdf.PdfReader) -> None:
    """Every font on every page is a TrueType subset of the node's font, its glyphs in the file (/FontFile2): no
    font left for the viewer to substitute."""
    for page in reader.pages:
        fonts: Any = page["/Resources"]["/Font"]  # type: ignore[index]
        assert len(fonts) >= 1
        for ref in fonts.values():
            f = ref.get_object()
            assert f["/Subtype"] == "/TrueType", f
            assert str(f["/BaseFont"]).endswith("+BIZUDPGothic-Regular"), f  # a subset (tag+name)
            descriptor = f["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor and len(descriptor["/FontFile2"].get_object().get_data()) > 1000
            assert "/ToUnicode" in f  # so the text can be searched and copied


def text_of(reader: pypdf.PdfReader) -> str:
    return "\n".join(p.extract_text() for p in reader.pages)


# ---- the receipt -------------------------------------------------------------------------------------------------


RECEIPT = ReceiptData(
    receipt_no="tsurugashima-2025-000001", issued_on="2025年5月3日", donor_name="山田 花子", amount_yen=3000,
    project_title="菜の花プロジェクト 休耕地を菜の花畑にして景観と養蜂を育て、収穫した菜種油を学校給食に届ける取り組み",
    project_organisation="NPO法人 つるがしま菜の花の会", received_on="2025年5月3日", reference="DN-7K2Q9X",
    issuer="鶴ヶ島市", node="tsurugashima")


def test_the_receipt_embeds_its_font_and_latin_text_and_figures_extract_whole() -> None:
    reader = read(receipt(RECEIPT))
    assert len(reader.pages) == 1
    assert_font_embedded(reader)
    text = text_of(reader)
    for want in ("寄附金受領証明書", "山田 花子 様", "金 3,000 円", "3,000 円", "tsurugashima-2025-000001",
                 "発行日 2025年5月3日", "DN-7K2Q9X", "鶴ヶ島市", "TownTip 地域協働ポータル ノード tsurugashima",
                 "NPO法人 つるがしま菜の花の会", "寄附金控除"):
        assert want in text, (want, text)
    assert "学校給食に届ける取り組み" in text.replace("\n", "")  # a long title wraps, it is not cut
    assert reader.metadata is not None and reader.metadata.title == "寄附金受領証明書 tsurugashima-2025-000001"


# ---- the notebook ------------------------------------------------------------------------------------------------


def test_the_notebook_breaks_across_pages_with_its_header_and_whole_dates() -> None:
    rows = [[f"2025-{m:02d}-{d:02d}", "A 子育て研究会・子育てNPO", "公園ゴミ拾い", "参加", "10", "10", "", "—", "0.25",
             "1.5", "120"] for m in (5, 6) for d in range(1, 31)]
    summary = [["合計", "", "60", "", "600", "600", "0", "—", "15", "90", "7200"],
               ["地区平均（大橋・2人）", "", "24.5", "", "38", "38", "0", "—", "1", "2", "300"]]
    data = notebook_pdf(title="まちづくり手帳 hanako@tsurugashima",
                        heading="まちづくり手帳  山田 花子 (hanako@tsurugashima)",
                        subheading="作成日 2025-07-01 / 大橋",
                        head=HEAD["ja"], rows=rows, summary=summary, note=WORDS["ja"]["empathy"])
    reader = read(data)
    assert len(reader.pages) >= 2
    assert_font_embedded(reader)
    for n, page in enumerate(reader.pages, start=1):  # each page: who, when, its number and the column headers
        text = page.extract_text()
        for want in ("まちづくり手帳", "山田 花子 (hanako@tsurugashima)", "作成日 2025-07-01 / 大橋", f"p.{n}",
                     "実施日",
                     "獲得ポイント"):
            assert want in text, (n, want, text)
    text = text_of(reader)
    for want in ("2025-05-01", "2025-06-30", "公園ゴミ拾い", "合計", "7200", "地区平均（大橋・2人）", "38",
                 "共感: SNS機能の公開まで集計していません"):
        assert want in text, (want, text)
    assert text.count("2025-05-17") == 1


# ---- the certificate ---------------------------------------------------------------------------------------------


def view(**kw: Any) -> c.CertificateView:
    return c.CertificateView(**{
        "id": "6f1c2a9e-3b7d-4e21-9c55-0d8e4f7a1b23", "certification": "fukushi", "title": "地域福祉サポーター",
        "name": "鶴ヶ島 花子", "global_handle": "hanako@tsurugashima", "credits": 3,
        "issued_at": datetime(2025, 5, 3, 1, 0, tzinfo=UTC), "issued_on": date(2025, 5, 3),
        "node": "tsurugashima", "kid": "k", "status": "valid", **kw})


URL = "https://tsurugashima.example.jp/certificates/6f1c2a9e-3b7d-4e21-9c55-0d8e4f7a1b23"


def test_the_certificate_pdf_states_the_certificate_with_its_font_embedded() -> None:
    reader = read(certificate_pdf_bytes(view(), verify_url=URL))
    assert len(reader.pages) == 1
    assert_font_embedded(reader)
    text = text_of(reader)
    for want in ("修了証", "Certificate of completion", "鶴ヶ島 花子 殿", "地域福祉サポーター", "取得単位 Credits: 3",
                 "発行日 Issued on: 2025-05-03", "発行地域 Issued by: tsurugashima",
                 "証明書番号 No.: 6f1c2a9e-3b7d-4e21-9c55-0d8e4f7a1b23", URL):
        assert want in text, (want, text)
    assert "REVOKED" not in text
    revoked = text_of(read(certificate_pdf_bytes(view(status="revoked"), verify_url=URL)))
    assert "この修了証は取り消されています / REVOKED" in revoked and URL in revoked


def test_a_character_the_font_lacks_prints_as_geta_not_as_nothing() -> None:
    assert pdf.printable("𠮷野 😀\x07") == "〓野 〓"
    text = text_of(read(certificate_pdf_bytes(view(name="𠮷野 花子"), verify_url=URL)))
    assert "〓野 花子 殿" in text


# ---- the certificate's signature: joserfc, the same bytes as before ------------------------------------------------

# Made by the hand-written signer this module replaced (services/points/courses.py `sign` before joserfc), with the
# Ed25519 key whose private bytes are 00 01 .. 1f: a certificate already in someone's hands.
OLD_X = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
OLD_KID = "1IG2tMH7J2wbJZnOf8LJzQitKf7LMvoAElsuDMVM54Y"
OLD_TOKEN = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6IjFJRzJ0TUg3SjJ3Ykpabk9mOExKelFpdEtmN0xNdm9BRWxzdURNVk01NFkiLCJ0eXAiOiJ0b3dudGlwLWNl"
    "cnRpZmljYXRlK2p3cyJ9.eyJjZXJ0aWZpY2F0aW9uIjp7ImNvZGUiOiJmdWt1c2hpIiwidGl0bGUiOiLlnLDln5_npo_npYnjgrXjg53jg7zjgr_j"
    "g7wifSwiY3JlZGl0cyI6MywiaWF0IjoxNzQ2MjM0MDAwLCJpc3MiOiJ0c3VydWdhc2hpbWEiLCJpc3N1ZWRfb24iOiIyMDI1LTA1LTAzIiwianRp"
    "IjoiNmYxYzJhOWUtM2I3ZC00ZTIxLTljNTUtMGQ4ZTRmN2ExYjIzIiwibmFtZSI6Ium2tOODtuWztiDoirHlrZAiLCJub2RlIjoidHN1cnVnYXNo"
    "aW1hIiwic3ViIjoiaGFuYWtvQHRzdXJ1Z2FzaGltYSIsInZlcmlmeSI6Ii9jZXJ0aWZpY2F0ZXMvNmYxYzJhOWUtM2I3ZC00ZTIxLTljNTUtMGQ4"
    "ZTRmN2ExYjIzIn0.FkNQLVvZVV8aH5szB5viL3Ah2EfaYcKAscXltr6blsUul_qb2AyAslHALH5nBLhKqc1GZ1SglQy_649kPw_pDQ")
OLD_CLAIMS = {
    "iss": "tsurugashima", "jti": "6f1c2a9e-3b7d-4e21-9c55-0d8e4f7a1b23", "sub": "hanako@tsurugashima",
    "name": "鶴ヶ島 花子", "certification": {"code": "fukushi", "title": "地域福祉サポーター"}, "credits": 3,
    "iat": 1746234000, "issued_on": "2025-05-03", "node": "tsurugashima",
    "verify": "/certificates/6f1c2a9e-3b7d-4e21-9c55-0d8e4f7a1b23"}


def old_key_pem() -> str:
    """The key as the service's table has kept it since the first certificate: PKCS#8 PEM."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_certificate_signed_before_joserfc_still_verifies_and_is_signed_the_same_again() -> None:
    assert check_signature(OLD_TOKEN, {OLD_KID: OLD_X}) == OLD_CLAIMS
    assert check_signature(f"  {OLD_TOKEN}\n", {OLD_KID: OLD_X}) == OLD_CLAIMS  # pasted with blanks around it
    key = certificate.load_key(old_key_pem())  # the key from the table signs as it did
    assert certificate.key_id(key) == OLD_KID and certificate.public_x(key) == OLD_X
    assert sign(OLD_CLAIMS, OLD_KID, key) == OLD_TOKEN
    assert sign(OLD_CLAIMS, OLD_KID, Ed25519PrivateKey.from_private_bytes(bytes(range(32)))) == OLD_TOKEN
    assert certificate.claims_of(OLD_TOKEN) == OLD_CLAIMS
    assert certificate.public_jwk(OLD_KID, OLD_X) == {"kty": "OKP", "crv": "Ed25519", "x": OLD_X, "kid": OLD_KID,
                                                      "alg": "EdDSA", "use": "sig"}


def test_a_new_key_signs_what_its_published_key_verifies() -> None:
    key = certificate.new_key()
    kid, x = certificate.key_id(key), certificate.public_x(key)
    again = certificate.load_key(certificate.private_pem(key))
    assert certificate.key_id(again) == kid
    token = sign({"jti": "x", "name": "坂戸 太郎"}, kid, again)
    assert json.loads(b64u_decode(token.split(".")[0])) == {"alg": "EdDSA", "kid": kid, "typ": c.CERT_TYP}
    assert check_signature(token, {kid: x}) == {"jti": "x", "name": "坂戸 太郎"}
    with pytest.raises(ValueError, match="key this node does not know"):
        check_signature(token, {OLD_KID: OLD_X})


def _with(token: str, *, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    h, p, s = token.split(".")
    enc = [b64u(json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()) if v else old
           for v, old in ((header, h), (claims, p))]
    return f"{enc[0]}.{enc[1]}.{s}"


@pytest.mark.parametrize(("token", "reason"), [
    (_with(OLD_TOKEN, claims={**OLD_CLAIMS, "name": "偽物 次郎"}), "signature does not match"),
    (_with(OLD_TOKEN, claims={**OLD_CLAIMS, "credits": 30}), "signature does not match"),
    (OLD_TOKEN[:-2] + ("A" if OLD_TOKEN[-2] != "A" else "B") + OLD_TOKEN[-1], "signature does not match"),
    (sign(OLD_CLAIMS, OLD_KID, Ed25519PrivateKey.generate()), "signature does not match"),  # a look-alike
    (_with(OLD_TOKEN, header={"alg": "EdDSA", "kid": "another", "typ": c.CERT_TYP}), "does not know"),
    (_with(OLD_TOKEN, header={"alg": "HS256", "kid": OLD_KID, "typ": c.CERT_TYP}), "not a certificate"),
    (_with(OLD_TOKEN, header={"alg": "none", "kid": OLD_KID, "typ": c.CERT_TYP}), "not a certificate"),
    (_with(OLD_TOKEN, header={"alg": "EdDSA", "kid": OLD_KID, "typ": "JWT"}), "not a certificate"),
    (OLD_TOKEN.rsplit(".", 1)[0] + ".", "signature does not match"),  # no signature at all
    ("not-a-token-at-all", "not a compact JWS"),
    ("aaaa.bbbb.cccc", "malformed"),
    ("W10.e30.AAAA", "malformed"),  # a JSON list as the header
])
def test_a_changed_or_foreign_token_is_refused_with_its_reason(token: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_signature(token, {OLD_KID: OLD_X})


def test_a_long_name_is_printed_whole_on_the_receipt_and_the_certificate() -> None:
    name = "特定非営利活動法人 " + "つるがしま里山と菜の花を未来につなぐ会" * 4  # 100 characters at most are allowed
    assert len(name) <= 100

    def whole(data: bytes) -> str:
        return text_of(read(data)).replace("\n", "").replace(" ", "")

    assert f"{name}様".replace(" ", "") in whole(receipt(dataclasses.replace(RECEIPT, donor_name=name)))
    assert f"{name}殿".replace(" ", "") in whole(certificate_pdf_bytes(view(name=name), verify_url=URL))


def test_documents_laid_out_in_several_threads_at_once_each_say_their_own_figures() -> None:
    """The notebook's export and the portal's certificate are laid out in worker threads: ReportLab's font state
    (its subsets per document) must not mix two documents."""
    from concurrent.futures import ThreadPoolExecutor

    def one(n: int) -> str:
        data = receipt(dataclasses.replace(RECEIPT, amount_yen=1000 * n, receipt_no=f"tsurugashima-2025-{n:06d}"))
        return text_of(read(data))

    with ThreadPoolExecutor(6) as pool:
        texts = list(pool.map(one, range(1, 13)))
    for n, text in enumerate(texts, start=1):
        assert f"金 {1000 * n:,} 円" in text and f"tsurugashima-2025-{n:06d}" in text, (n, text)
