import unicodedata

import pandas as pd

from commerce_lm.demo import corpus as demo_data


def test_deterministic_for_a_seed():
    pd.testing.assert_frame_equal(demo_data.generate(200, seed=3), demo_data.generate(200, seed=3))
    assert not demo_data.generate(200, seed=3).equals(demo_data.generate(200, seed=4))


def _scripts(text):
    return {unicodedata.name(ch, "?").split(" ")[0] for ch in text if ch.isalpha()}


def test_languages_labels_tasks_groups():
    frame = demo_data.generate(1500, seed=1)
    assert frame["lang"].nunique() >= 15
    scripts = set().union(*(_scripts(t) for t in frame["description"].head(800)))
    assert {"LATIN", "CYRILLIC", "ARABIC", "HANGUL", "DEVANAGARI"} <= scripts
    assert frame["policy_label"].nunique() >= 8 and "allowed" in set(frame["policy_label"])
    # is_prohibited follows the policy label; the other two tasks do not.
    assert frame.groupby("policy_label")["is_prohibited"].nunique().max() == 1
    for task in ("is_counterfeit", "is_offplatform"):
        assert (frame.groupby("policy_label")[task].nunique() == 2).all(), task
    for group in ("relist_group", "translation_group"):
        sizes = frame[group].value_counts()
        assert len(sizes) > 20 and sizes.min() >= 2
    translated = frame.dropna(subset=["translation_group"]).groupby("translation_group")["lang"].nunique()
    assert (translated >= 2).all()


def test_realistic_noise():
    text = " ".join(demo_data.generate(800, seed=2)["description"])
    assert "<br>" in text or "&amp;" in text
    assert any(currency in text for currency in ("€", "$", "£"))
    assert " kg" in text or " ml" in text
    relisted = " ".join(demo_data.generate(800, seed=2).dropna(subset=["relist_group"])["title"])
    assert any(emoji in relisted for emoji in demo_data.EMOJI) or any(ch.isdigit() for ch in relisted)


def test_cues_are_localised_and_not_giveaways():
    frame = demo_data.generate(3000, seed=5)
    text = frame["title"] + " " + frame["description"]
    for task, table in (("is_counterfeit", demo_data.COUNTERFEIT), ("is_offplatform", demo_data.OFFPLATFORM)):
        positive = frame[task] == 1
        # Explicit cues come in the listing's own language, not only in English.
        german = positive & (frame["lang"] == "de")
        explicit_de = text[german].apply(lambda t, cues=table["de"][0]: any(c.split("{")[0] in t for c in cues))
        assert explicit_de.mean() > 0.3, task
        # Honest listings use the same words to deny the cue, and some positives carry no cue at all.
        denials = text[~positive].apply(lambda t, table=table: any(entry[2] in t for entry in table.values()))
        assert 0.02 < denials.mean() < 0.2, task
        hints = text[~positive].apply(lambda t, table=table: any(entry[1] in t for entry in table.values()))
        assert hints.any(), task
