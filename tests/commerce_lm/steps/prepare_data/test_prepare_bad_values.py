"""Bad input, round three (issue 23): values out of their column, long CSV fields, invisible copies, tag-like text."""

import json

import pandas as pd
import pytest

from commerce_lm.cli import main
from commerce_lm.config import ConfigError, load_config
from commerce_lm.data.values import normalize_text
from tests.helpers.prepare import prepare_tables as _prepare

GOOD = [(f"g{i}", f"good listing number {i}", "en", str(i % 2)) for i in range(8)]


def _csv(path, lines):
    rows = "".join(f"{i},{t},{lang},{y}\n" for i, t, lang, y in GOOD)
    path.write_bytes(("id,text,lang,label\n" + rows).encode() + lines)
    return path


def _config(tmp_path, extra):
    path = tmp_path / "run.yaml"
    base = "model: some/model\ndomain: {data: d.parquet, label: y}\ntasks: [{name: t, data: d.parquet, label: z}]\n"
    path.write_text(base + extra)
    return path


# ---- a CSV row whose unquoted comma shifted its fields, with the field count still right ----------
def test_csv_row_shifted_by_an_unquoted_comma_is_rejected_with_its_cells(tmp_path):
    # The title holds a comma and the row lacks its lang: "desc 0 phone" lands in `lang`, "fr" in `label`.
    data = _csv(tmp_path / "d.csv", b"s1,phone,desc 0 phone,fr\n")
    out = _prepare(tmp_path, data)
    for name in ("domain", "task-t"):
        table, rejected, _ = out[name]
        assert "s1" not in set(table["id"])
        row = rejected.set_index("line").loc[10]
        assert (row["reason"], row["column"]) == ("invalid_value", "lang")
        cells = {"id": "s1", "text": "phone", "lang": "desc 0 phone", "label": "fr"}
        assert json.loads(row["input"]).items() >= cells.items()  # every cell as the file held it
    assert out["labels"] == ["0", "1"]  # no class was made up from a shifted column


def test_language_codes_pass_and_other_lang_values_are_rejected_in_parquet_too(tmp_path):
    langs = ["en", " pt-BR ", "zh_Hant", "und", "", None, "desc 0 phone", "3"]
    frame = pd.DataFrame({"id": [f"i{n}" for n in range(8)], "text": [f"listing {n}" for n in range(8)]})
    frame["lang"], frame["label"] = langs, [n % 2 for n in range(8)]
    frame.to_parquet(tmp_path / "d.parquet")
    table, rejected, _ = _prepare(tmp_path, tmp_path / "d.parquet")["task-t"]
    assert list(table["lang"]) == ["en", "pt-BR", "zh_Hant", "und", "und", "und"]
    assert list(rejected["row"]) == [6, 7] and set(rejected["reason"]) == {"invalid_value"}


# ---- a long CSV field is a long text, as in Parquet ---------------------------------------------
@pytest.mark.parametrize("overlong", ["truncate", "reject"])
def test_a_one_megabyte_csv_field_is_treated_as_the_same_parquet_cell(tmp_path, overlong):
    long = "word " * 200_000
    data = _csv(tmp_path / "d.csv", f"big,{long},en,1\n".encode())
    table, rejected, _ = _prepare(tmp_path, data, overlong=overlong)["task-t"]
    if overlong == "truncate":
        assert table.set_index("id").loc["big", "text"] == normalize_text(long)[:5000]
        assert rejected.empty
    else:
        assert list(rejected["reason"]) == ["text_too_long"]
        assert json.loads(rejected["input"][0])["text"] == long  # the row is kept whole


def test_a_csv_error_keeps_the_raw_line(tmp_path):
    data = _csv(tmp_path / "d.csv", b'q1,"half"quoted,en,1\n')
    _, rejected, _ = _prepare(tmp_path, data)["task-t"]
    assert json.loads(rejected["input"][0])["raw"] == 'q1,"half"quoted,en,1'


# ---- a copy that differs by an invisible mark --------------------------------------------------
@pytest.mark.parametrize("mark", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"])
def test_a_copy_differing_only_by_a_zero_width_mark_is_a_duplicate(tmp_path, mark):
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["red leather shoes", f"red leather{mark} shoes"], "label": [1, 1]})
    frame.to_parquet(tmp_path / "d.parquet")
    copies = f"a,red leather shoes,en,1\nb,red {mark}leather shoes,en,1\n".encode()
    for data in (tmp_path / "d.parquet", _csv(tmp_path / "d.csv", copies)):
        table, rejected, _ = _prepare(tmp_path, data)["task-t"]
        assert "duplicate_text" in set(rejected["reason"]), data
    assert table.set_index("id").loc["g0", "text"] == "good listing number 0"  # stored texts stay as written


# ---- tag-like text ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a<b and c>d", "a<b and c>d"),
        ("size <30 for ages >5", "size <30 for ages >5"),
        ("<b>bold</b> shoes", "bold shoes"),
        ('<a href="x" target=_blank>link</a>', "link"),
        ("<option selected value=1>red<br/>blue", "red blue"),
        ("<!-- note -->shoes", "shoes"),
    ],
)
def test_only_real_tags_are_stripped(tmp_path, text, kept):
    assert normalize_text(text) == kept
    pd.DataFrame({"id": ["a"], "text": [text], "label": [1]}).to_parquet(tmp_path / "d.parquet")
    table, _, _ = _prepare(tmp_path, tmp_path / "d.parquet")["task-t"]
    assert list(table["text"]) == [kept]  # the Arrow path strips the same


# ---- configs ---------------------------------------------------------------------------------
def test_an_empty_text_list_is_a_config_error_naming_the_key(tmp_path, capsys):
    path = _config(tmp_path, "")
    path.write_text(path.read_text().replace("label: z}", "label: z, text: []}"))
    with pytest.raises(ConfigError, match=r"tasks\.0\.text: List should have at least 1 item"):
        load_config(path)
    assert main(["prepare-data", "--config", str(path), "--output", str(tmp_path / "out")]) == 2
    assert "tasks.0.text" in capsys.readouterr().err


@pytest.mark.parametrize(("val", "test"), [("0.5", "0.5"), ("0.6", "0.5")])
def test_fractions_that_leave_no_training_rows_are_a_config_error_naming_both(tmp_path, val, test):
    path = _config(tmp_path, f"prepare: {{validation_fraction: {val}, test_fraction: {test}}}\n")
    with pytest.raises(ConfigError, match=r"prepare: .*validation_fraction \(.*\) \+ test_fraction \(.*\)"):
        load_config(path)
