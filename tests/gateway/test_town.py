"""The town's look set by the node's operator: a colour white text stays readable on (WCAG AA), an emblem that is a
plain SVG or PNG of a bounded size; refused at `towntip node up` with a message that says what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from towntip.cli import main as cli_main
from towntip.kernel.settings import NodeSettings
from towntip.kernel.town import (
    EMBLEM_MAX_BYTES,
    PNG_MAGIC,
    TownError,
    check_colour,
    contrast_with_white,
    demo_towns,
    emblem_of,
    load_emblem,
    town_of,
)

SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4"/></svg>'


def test_the_colour_must_keep_white_text_readable() -> None:
    assert round(contrast_with_white("#000000"), 1) == 21.0 and round(contrast_with_white("#ffffff"), 1) == 1.0
    assert check_colour(" #0B6E4F ") == "#0b6e4f"
    with pytest.raises(TownError, match=r"contrast of 2\.\d\d:1; WCAG AA needs at least 4.5:1"):
        check_colour("#ff9900")
    for bad in ("green", "#0b6e4", "0b6e4f", "#0b6e4g"):
        with pytest.raises(TownError, match="must look like #0b6e4f"):
            check_colour(bad)
    # The demo table's towns all pass (the table is checked when read).
    assert all(contrast_with_white(t.primary) >= 4.5 for t in demo_towns().values())


def test_the_emblem_is_a_plain_svg_or_png_of_bounded_size(tmp_path: Path) -> None:
    svg, png = tmp_path / "e.svg", tmp_path / "e.png"
    svg.write_text(SVG, encoding="utf-8")
    png.write_bytes(PNG_MAGIC + b"\0" * 100)
    assert load_emblem(svg).media_type == "image/svg+xml" and load_emblem(png).media_type == "image/png"
    refused = {
        "script": SVG.replace("<circle", "<script>alert(1)</script><circle"),
        "handler": SVG.replace("<circle", '<circle onload="alert(1)"'),
        "entity": '<!DOCTYPE svg [<!ENTITY a "aaaa">]>' + SVG,
        "outside": SVG.replace("<circle", '<image href="https://tracker.example/x.png"/><circle'),
        "html": "<html><body>not an emblem</body></html>",
        "broken": "<svg xmlns='http://www.w3.org/2000/svg'><circle></svg>",
    }
    for name, text in refused.items():
        bad = tmp_path / f"{name}.svg"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(TownError):
            load_emblem(bad)
    big = tmp_path / "big.png"
    big.write_bytes(PNG_MAGIC + b"\0" * EMBLEM_MAX_BYTES)
    with pytest.raises(TownError, match="at most 256 KB"):
        load_emblem(big)
    with pytest.raises(TownError, match="cannot be read"):
        load_emblem(tmp_path / "none.svg")


def test_the_town_from_settings_and_the_drawn_emblem(tmp_path: Path) -> None:
    demo = town_of(NodeSettings(node_id="tsurugashima"))
    assert (demo.name_ja, demo.primary, demo.emblem) == ("鶴ヶ島市", "#0b6e4f", None)
    drawn = emblem_of(demo)
    assert "鶴" in drawn.data.decode() and demo.emblem_url == f"/town/emblem?v={drawn.version}"
    (tmp_path / "e.svg").write_text(SVG, encoding="utf-8")
    own = town_of(NodeSettings(node_id="tsurugashima", town_colour="#1F4E9C", town_emblem=str(tmp_path / "e.svg")))
    assert own.primary == "#1f4e9c" and emblem_of(own).data == SVG.encode()
    assert own.emblem_url != demo.emblem_url  # a new emblem, a new address: browsers fetch it at once


@pytest.mark.parametrize(
    "args, message",
    [
        (["--town-colour", "#ffcc00"], "--town-colour: the town colour #ffcc00 gives white text a contrast of"),
        (["--town-colour", "yellow"], "--town-colour: the town colour must look like"),
        (
            ["--town-emblem", "/nonexistent/emblem.svg"],
            "--town-emblem: the town emblem '/nonexistent/emblem.svg' cannot",
        ),
    ],
)
def test_node_up_refuses_a_faint_colour_or_a_bad_emblem(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["node", "up", *args]) == 2
    assert message in capsys.readouterr().err
