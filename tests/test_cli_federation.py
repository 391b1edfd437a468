"""`towntip federation anchor ...`: the anchor's key, its members, and refusals of bad input."""

from __future__ import annotations

import json

from towntip.cli import main


def test_anchor_init_add_list_remove(tmp_path, capsys) -> None:  # noqa: ANN001
    d = str(tmp_path / "anchor")
    assert main(["federation", "anchor", "init", "--data-dir", d, "--entity-id", "https://hub.example.jp/"]) == 0
    jwks_path = capsys.readouterr().out.strip()
    keys = json.loads(open(jwks_path).read())["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and "d" not in keys[0]
    assert (tmp_path / "anchor" / "anchor-key.pem").stat().st_mode & 0o077 == 0

    assert main(["federation", "anchor", "add", "--data-dir", d, "--entity-id", "https://tsuru.example.jp",
                 "--node", "tsurugashima"]) == 0
    assert main(["federation", "anchor", "add", "--data-dir", d, "--entity-id", "https://other.example.jp",
                 "--node", "tsurugashima"]) == 1  # one node id, one member
    assert main(["federation", "anchor", "add", "--data-dir", d, "--entity-id", "not a url", "--node", "x1"]) == 2
    assert main(["federation", "anchor", "add", "--data-dir", d, "--entity-id", "https://x.example.jp",
                 "--node", "Bad Node"]) == 2
    capsys.readouterr()
    assert main(["federation", "anchor", "list", "--data-dir", d]) == 0
    assert json.loads(capsys.readouterr().out) == {"https://tsuru.example.jp": "tsurugashima"}

    assert main(["federation", "anchor", "remove", "--data-dir", d, "--entity-id", "https://tsuru.example.jp"]) == 0
    assert main(["federation", "anchor", "remove", "--data-dir", d, "--entity-id", "https://tsuru.example.jp"]) == 1
    capsys.readouterr()
    main(["federation", "anchor", "list", "--data-dir", d])
    assert json.loads(capsys.readouterr().out) == {}
    # init again keeps the same key: nodes holding the JWKS keep trusting the anchor
    main(["federation", "anchor", "init", "--data-dir", d, "--entity-id", "https://hub.example.jp"])
    assert json.loads(open(jwks_path).read())["keys"] == keys
