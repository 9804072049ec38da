"""Report.save(path) writes the format the extension names; repr uses the CLI's units; --set overrides show in
the target's title and the report's repr (issue 17)."""

import json

import pytest

import graphperf
from graphperf.errors import UsageError
from graphperf.report.units import seconds, si
from graphperf.target import load_target


@pytest.fixture(scope="module")
def report():
    return graphperf.analyze("gpt2", config="tiny", dtype="float32", target="h100")


@pytest.mark.parametrize("ext,check", [
    (".json", lambda text, r: json.loads(text) == json.loads(r.to_json())),
    (".csv", lambda text, r: text == r.to_csv()),
    (".html", lambda text, r: text.startswith("<!DOCTYPE html>")),
    (".txt", lambda text, r: "projected latency" in text and seconds(r.totals["latency_s"]) in text),
])
def test_save_writes_the_format_of_the_extension(tmp_path, report, ext, check):
    path = tmp_path / f"report{ext}"
    assert report.save(path) == {".txt": "table"}.get(ext, ext[1:])
    assert check(path.read_text(), report)


def test_save_refuses_an_extension_it_cannot_read(tmp_path, report):
    with pytest.raises(UsageError, match=r"cannot tell the format .* \*\.json, \*\.csv, \*\.html or \*\.txt"):
        report.save(tmp_path / "report.parquet")
    assert not (tmp_path / "report.parquet").exists()


def test_repr_uses_units(report):
    t = report.totals
    text = repr(report)
    assert seconds(t["latency_s"]) in text and si(t["flops"], "FLOP") in text and si(t["bytes"], "B") in text
    assert "e-0" not in text and str(t["flops"]) not in text  # no raw SI floats or bare integers


def test_overrides_show_in_the_title_and_repr():
    target = load_target("h100", {"hbm_gbps": "4800"})
    assert target.overrides == {"hbm_gbps": 4800.0}
    assert target.title == f"{target.label} with --set hbm_gbps=4800"
    assert load_target("h100").title == load_target("h100").label
    r = graphperf.analyze("gpt2", config="tiny", dtype="float32", target=target)
    assert " on h100 --set hbm_gbps=4800:" in repr(r)
    assert r.to_dict()["target"]["overridden"] == ["hbm_gbps"] and r.to_dict()["target"]["hbm_gbps"] == 4800.0


def test_set_shows_in_every_title_and_in_compare(tmp_path, capsys):
    from graphperf.cli import main

    tiny = ["gpt2", "--config", "tiny", "--dtype", "float32"]
    assert main(["analyze", *tiny, "--set", "hbm_gbps=4000"]) == 0
    assert "with --set hbm_gbps=4000" in capsys.readouterr().out
    assert main(["whatif", *tiny, "--set", "hbm_gbps=4000"]) == 0
    assert "on h100 -> h100 --set hbm_gbps=4000" in capsys.readouterr().out.replace("\n", " ")
    assert main(["whatif", *tiny, "--set", "hbm_gbps=4000", "-o", str(tmp_path / "w.html")]) == 0
    assert "with --set hbm_gbps=4000" in (tmp_path / "w.html").read_text()
    base = graphperf.analyze("gpt2", config="tiny", dtype="float32", target="h100")
    faster = graphperf.analyze("gpt2", config="tiny", dtype="float32",
                               target=load_target("h100", {"hbm_gbps": "4000"}))
    assert str(base.compare(faster)).splitlines()[0] == "gpt2 on h100 -> gpt2 on h100 --set hbm_gbps=4000"
