"""Bad input, one test per cause: every value kept is the file's value, every bad row says why."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from commerce_lm import config
from commerce_lm.data.readers import InputError
from commerce_lm.steps.prepare_data import normalize_text
from tests.helpers.prepare import prepare_tables as _prepare

GOOD = [(f"g{i}", f"good listing number {i}", str(i % 2)) for i in range(8)]


def _csv(path, lines):
    path.write_bytes(("id,text,label\n" + "".join(f"{i},{t},{y}\n" for i, t, y in GOOD)).encode() + lines)
    return path


# ---- CSV rows whose columns shifted ----------------------------------------------------------------
def test_csv_row_with_unquoted_comma_or_extra_fields_is_malformed_not_shifted(tmp_path):
    data = _csv(tmp_path / "d.csv", b"s1,red shoes, size 9,1\ns2,blue hat,0,extra\n")
    out = _prepare(tmp_path, data)
    table, rejected, _ = out["task-t"]
    assert set(table["id"]) == {i for i, _, _ in GOOD}
    bad = rejected.set_index("line")
    assert bad.loc[10, "reason"] == "malformed_row" and bad.loc[11, "reason"] == "malformed_row"
    assert "red shoes" in bad.loc[10, "input"] and "4 fields" in bad.loc[10, "input"]
    assert out["labels"] == ["0", "1"]  # no class was made up from a shifted column


def test_csv_unclosed_quote_names_file_and_line(tmp_path):
    data = _csv(tmp_path / "d.csv", b'q1,"never closed,1\nq2,more,0\n')
    with pytest.raises(InputError, match=rf"{data}, line 10: unclosed quote"):
        _prepare(tmp_path, data)


def test_csv_quote_inside_a_quoted_field_is_a_malformed_row(tmp_path):
    data = _csv(tmp_path / "d.csv", b'q1,"half"quoted,1\n')
    _, rejected, _ = _prepare(tmp_path, data)["task-t"]
    assert list(rejected["reason"]) == ["malformed_row"] and list(rejected["line"]) == [10]


def test_csv_fragment_left_by_a_broken_quote_is_not_read_as_a_row(tmp_path):
    # The unclosed quote ends inside the next row's quoted text; what follows its newline,
    # `0,0",0`, has three fields but is a fragment: its unquoted quote gives it away.
    data = _csv(tmp_path / "d.csv", b'q1,"never closed,1\nq2,"two\n0,0",0\n')
    table, rejected, _ = _prepare(tmp_path, data)["task-t"]
    assert set(table["id"]) == {i for i, _, _ in GOOD}
    assert list(rejected["reason"]) == ["malformed_row", "malformed_row"] and "unquoted field" in rejected["input"][1]


# ---- JSONL ---------------------------------------------------------------------------------------
def _jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_jsonl_schema_comes_from_the_config_not_the_first_record(tmp_path):
    records = [{"id": i, "text": t, "label": int(y)} for i, t, y in GOOD]
    records[3]["lang"] = "de"
    out = _prepare(tmp_path, _jsonl(tmp_path / "d.jsonl", records))
    table, _, _ = out["task-t"]
    assert table.set_index("id").loc["g3", "lang"] == "de"
    assert (table.set_index("id").drop("g3")["lang"] == "und").all()


def test_jsonl_named_column_no_record_has_is_refused(tmp_path):
    data = _jsonl(tmp_path / "d.jsonl", [{"id": i, "text": t, "label": int(y)} for i, t, y in GOOD])
    with pytest.raises(InputError, match=rf"{data}: no record has column\(s\) \['lng'\]"):
        _prepare(tmp_path, data, task={"lang": "lng"})


def test_jsonl_ids_are_exact_strings(tmp_path):
    records = [{"id": 12345678901234567, "text": "first big id", "label": 1}]
    records += [{"id": 12345678901234568, "text": "second big id", "label": 0}]
    records += [{"id": 7.0, "text": "a float id", "label": 1}, {"id": 7.5, "text": "fractional id", "label": 0}]
    out = _prepare(tmp_path, _jsonl(tmp_path / "d.jsonl", records))
    table, rejected, _ = out["task-t"]
    assert set(table["id"]) == {"12345678901234567", "12345678901234568", "7"}
    assert list(rejected["reason"]) == ["invalid_id"] and list(rejected["column"]) == ["id"]


def test_jsonl_bad_line_is_rejected_with_its_line(tmp_path):
    records = [{"id": i, "text": t, "label": int(y)} for i, t, y in GOOD]
    data = _jsonl(tmp_path / "d.jsonl", [*records[:2], '{"id": "x", "text": ', "[1, 2]", "", *records[2:]])
    _, rejected, stats = _prepare(tmp_path, data)["task-t"]
    assert list(rejected["reason"]) == ["malformed_row", "malformed_row"] and list(rejected["line"]) == [3, 4]
    assert stats["input_rows"] == len(GOOD) + 2  # a blank line is not a row


# ---- canonical values -----------------------------------------------------------------------------
def test_label_spellings_of_one_number_are_one_class(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("id,text,label\na1,first text,3\na2,second text,1\n")
    _jsonl(
        folder / "b.jsonl",
        [{"id": "b1", "text": "third text", "label": 3.0}, {"id": "b2", "text": "x", "label": "1.0"}],
    )
    pq.write_table(pa.table({"id": ["c1"], "text": ["fourth text"], "label": [3.0]}), folder / "c.parquet")
    out = _prepare(tmp_path / "out", folder, task={"data": str(folder / "a.csv")})
    assert out["labels"] == ["1", "3"]
    domain, _, _ = out["domain"]
    assert sorted(domain["label"]) == [0, 0, 1, 1, 1]


@pytest.mark.parametrize("column", ["id", "lang", "label", "group"])
def test_undecodable_bytes_in_any_column_reject_the_row_naming_it(tmp_path, column):
    cells = {"id": b"u1", "lang": b"en", "label": b"1", "group": b"G1"}
    cells[column] = cells[column] + b"\xff"
    data = tmp_path / "d.csv"
    lines = [b"id,text,label,lang,group"] + [f"{i},{t},{y},en,".encode() for i, t, y in GOOD]
    lines.append(b",".join([cells["id"], b"a text", cells["label"], cells["lang"], cells["group"]]))
    data.write_bytes(b"\n".join(lines) + b"\n")
    out = _prepare(tmp_path, data, similarity={"group": "group"})
    readers = {"id": ["domain", "task-t", "similarity-s"], "lang": ["domain", "task-t", "similarity-s"]}
    for name in readers.get(column, ["similarity-s"] if column == "group" else ["domain", "task-t"]):
        table, rejected, _ = out[name]
        assert list(rejected["reason"]) == ["undecodable_value"] and list(rejected["column"]) == [column]
        assert "\\xff" in rejected["input"].iloc[0]
        assert not table["id"].str.startswith("u1").any()
    assert all("\udcff" not in label for label in out["labels"])


def test_markup_removal_never_eats_text():
    assert normalize_text("size <30 for ages >5") == "size <30 for ages >5"
    assert normalize_text("a <b>bold</b> &lt;b&gt; word<br/>end <!-- c -->") == "a bold <b> word end"
    assert normalize_text("<br>Ｖｉａｇｒａ &amp;  cheap\u00a0 <b>now</b>") == "Viagra & cheap now"


def test_text_of_only_invisible_marks_is_empty(tmp_path):
    data = _csv(tmp_path / "d.csv", "z1,\u200b\u200f\u2066 \ufeff,1\n".encode())
    _, rejected, _ = _prepare(tmp_path, data)["task-t"]
    assert list(rejected["reason"]) == ["empty_text"] and list(rejected["column"]) == ["text"]


def test_missing_language_is_und(tmp_path):
    data = tmp_path / "d.parquet"
    pq.write_table(
        pa.table(
            {"id": ["a", "b", "c"], "text": ["one", "two", "three"], "label": [0, 1, 0], "lang": ["de", None, ""]}
        ),
        data,
    )
    table, _, _ = _prepare(tmp_path / "out", data)["task-t"]
    assert list(table.sort_values("id")["lang"]) == ["de", "und", "und"]


# ---- named columns --------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["lang", "split", "group_by"])
def test_a_column_the_config_names_must_exist(tmp_path, key):
    data = _csv(tmp_path / "d.csv", b"")
    with pytest.raises(InputError, match=rf"{data}: missing column\(s\) \['typo'\]"):
        _prepare(tmp_path, data, task={key: ["typo"] if key == "group_by" else "typo"})


def test_defaulted_columns_may_be_absent_also_after_a_json_round_trip(tmp_path):
    data = _csv(tmp_path / "d.csv", b"")
    raw = {
        "model": "m",
        "domain": {"data": str(data), "label": "label"},
        "tasks": [{"name": "t", "data": str(data), "label": "label"}],
    }
    cfg = config.config_from_json(config.parse_config(raw).to_json())
    assert not cfg.domain.named("lang") and cfg.domain.lang == "lang"
    _prepare(tmp_path, data)


# ---- sample, paths, encodings ---------------------------------------------------------------------
def test_sample_is_an_exact_cap_deterministic_for_the_seed(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("id,text,label\n" + "".join(f"r{i},text number {i},{i % 2}\n" for i in range(40)))
    ids = []
    for run in range(2):
        table, _, stats = _prepare(tmp_path / f"out{run}", data, task={"sample": 10})["task-t"]
        assert len(table) == 10 and stats["sampled_out_rows"] == 30
        ids.append(sorted(table["id"]))
    assert ids[0] == ids[1]


def test_brackets_in_a_path_are_not_a_glob(tmp_path):
    folder = tmp_path / "run[1]"
    folder.mkdir()
    table, _, _ = _prepare(tmp_path, _csv(folder / "d[1].csv", b""))["task-t"]
    assert len(table) == len(GOOD)


def test_spark_folder_markers_are_skipped(tmp_path):
    folder = tmp_path / "spark"
    (folder / "_temporary").mkdir(parents=True)
    _csv(folder / "part-00000.csv", b"")
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.csv.crc").write_bytes(b"\x00\x01")
    (folder / "_temporary" / "part-00001.csv").write_text("garbage")
    table, _, _ = _prepare(tmp_path / "out", folder)["task-t"]
    assert len(table) == len(GOOD)


def test_utf16_is_refused_unless_configured(tmp_path):
    data = tmp_path / "d.csv"
    data.write_bytes(("id,text,label\n" + "".join(f"{i},{t},{y}\n" for i, t, y in GOOD)).encode("utf-16"))
    with pytest.raises(InputError, match=rf"{data}: encoded as UTF-16"):
        _prepare(tmp_path / "a", data)
    table, _, _ = _prepare(tmp_path / "b", data, domain={"encoding": "utf-16"}, task={"encoding": "utf-16"})["task-t"]
    assert len(table) == len(GOOD)


def test_utf8_bom_is_read(tmp_path):
    data = tmp_path / "d.csv"
    data.write_bytes(b"\xef\xbb\xbf" + ("id,text,label\n" + "".join(f"{i},{t},{y}\n" for i, t, y in GOOD)).encode())
    table, _, _ = _prepare(tmp_path / "out", data)["task-t"]
    assert len(table) == len(GOOD)


def test_corrupt_parquet_page_names_the_file(tmp_path):
    data = tmp_path / "d.parquet"
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(5000)], "text": [f"text {i} " * 5 for i in range(5000)]})
    frame["label"] = 1
    frame.to_parquet(data, row_group_size=1000, compression="snappy")
    raw = bytearray(data.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 400] = bytes(400)
    data.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=rf"{data}(, rows from \d+: unreadable Parquet data|: not a readable)"):
        _prepare(tmp_path / "out", data)
