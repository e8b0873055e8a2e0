"""A deterministic, multilingual synthetic listing corpus for the demo and the tests.

Each listing has a title and a description in one of 16 languages (Latin and non-Latin scripts),
an exclusive policy label, three binary integrity labels and two similarity groups:

* ``is_prohibited`` is a function of the policy label;
* ``is_counterfeit`` (replica cues) and ``is_offplatform`` (off-platform payment or contact) are
  drawn independently of it, so a linear head on the embeddings has something of its own to learn;
  their cues are written in the listing's language, said outright or only hinted, sometimes absent,
  and honest listings deny them in the same words (:mod:`commerce_lm.demo.phrases`);
* ``relist_group`` ties an item to re-listings of it: paraphrased, obfuscated (``v1agra``, spaced
  letters, emoji), with a changed price or contact; ``translation_group`` ties it to translations.

Text carries realistic noise: typos, mixed languages, HTML remnants, prices and units. Allowed
items include look-alikes of prohibited ones (a toy pistol, vitamin gummies).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from commerce_lm import storage
from commerce_lm.demo.phrases import COUNTERFEIT, LOOKALIKES, OFFPLATFORM, PHRASES

LANGUAGES = tuple(PHRASES)

# Policy label -> items. Brand and product names stay untranslated, as in real listings.
POLICY_ITEMS: dict[str, tuple[str, ...]] = {
    "allowed": (
        "iPhone 13 Pro",
        "Nike Air Max 90",
        "LEGO Star Wars set",
        "Dyson V11 vacuum",
        "Kindle Paperwhite",
        "Canon EOS 250D camera",
        "IKEA Billy bookshelf",
        "Levi's 501 jeans",
        "Sony WH-1000XM4 headphones",
        *LOOKALIKES,
    ),
    "weapons": (
        "Glock 19 pistol",
        "AR-15 rifle kit",
        "switchblade knife",
        "taser stun gun",
        "9mm ammunition box",
        "brass knuckles",
    ),
    "drugs": ("CBD THC gummies", "magic mushrooms", "cannabis seeds", "MDMA pills", "kratom powder"),
    "prescription_meds": ("Viagra 100mg", "Xanax 2mg", "Adderall XR", "Ozempic pen", "OxyContin tablets"),
    "adult": ("adult toy", "erotic DVD collection", "escort service", "lingerie photo set"),
    "hazardous": (
        "mercury thermometer",
        "fireworks pack",
        "lithium battery cells",
        "pesticide concentrate",
        "butane refill cans",
    ),
    "wildlife": ("ivory carving", "tiger skin rug", "rhino horn powder", "pangolin scales", "sea turtle shell"),
    "tobacco": ("Marlboro cigarettes carton", "vape pods", "nicotine pouches", "Cuban cigars box"),
}
POLICY_LABELS = tuple(POLICY_ITEMS)
PROHIBITED = frozenset({"weapons", "drugs", "prescription_meds", "hazardous", "wildlife"})
# Policy labels are drawn with these weights: most listings are allowed.
POLICY_WEIGHTS = (0.44, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08)

# How a listing of each kind carries its cue: (explicit, implicit hint, nothing) for a positive
# listing; (denial, implicit hint) for a negative one, the rest saying nothing. A positive with no
# cue is label noise no encoder can read; hints on negatives make the hint a clue, not a proof.
POSITIVE_CUE = (0.8, 0.15, 0.05)
NEGATIVE_CUE = (0.06, 0.03)
# Share of explicit cues written in English whatever the listing's language.
ENGLISH_CUE = 0.25
# Share of listings with a phrase in another language appended (mixed-language listings are common).
MIXED_LANGUAGE = 0.35
# Share of first listings whose item name is obfuscated, whatever the item: sellers of every kind
# dodge keyword filters, so obfuscation is noise, not a sign of a prohibited item.
OBFUSCATED = 0.2
# Share of listings that do not name their item at all (the photos would), whatever the item: no
# encoder can read their policy label from the text, as in real listings.
UNNAMED = 0.08
UNNAMED_ITEM = ("item as pictured", "see photos", "read the description", "ask for details", "📷")
HTML_REMNANTS = ("<br>", "&amp;", "<b>", "</b>", "&nbsp;", "<p>")
EMOJI = ("🔥", "💊", "✅", "⭐", "📦", "💯")
CURRENCIES = ("€", "$", "£", "¥", "₹", "₩", "zł", "₺")
UNITS = ("ml", "g", "kg", "cm", "pcs", "mg")
LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5"})


@dataclass(frozen=True)
class _Item:
    policy: str
    name: str
    counterfeit: bool
    offplatform: bool
    price: float
    unit: str


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _obfuscate(name: str, rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        return name.translate(LEET)
    if style == 1:
        word, *rest = name.split(" ")
        return " ".join([" ".join(word), *rest])
    return f"{rng.choice(EMOJI)} {name} {rng.choice(EMOJI)}"


def _contact(rng: random.Random) -> dict[str, str]:
    return {
        "phone": f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}",
        "handle": f"seller{rng.randint(100, 99999)}",
    }


def _cue(table: dict, lang: str, positive: bool, rng: random.Random) -> str | None:
    """The cue phrase a listing carries for one integrity label (None: it says nothing of it)."""
    explicit, hint, denial = table[lang]
    roll = rng.random()
    if positive:
        if roll < POSITIVE_CUE[0]:
            phrases = table["en"][0] if rng.random() < ENGLISH_CUE else explicit
            return rng.choice(phrases).format(**_contact(rng))
        return hint if roll < POSITIVE_CUE[0] + POSITIVE_CUE[1] else None
    if roll < NEGATIVE_CUE[0]:
        return denial
    return hint if roll < NEGATIVE_CUE[0] + NEGATIVE_CUE[1] else None


def _render(item: _Item, lang: str, rng: random.Random, obfuscate: bool = False) -> tuple[str, str]:
    """One listing (title, description) of ``item`` in ``lang``, with fresh noise."""
    sale, new, used, shipping, contact, desc = PHRASES[lang]
    name = _obfuscate(item.name, rng) if obfuscate or rng.random() < OBFUSCATED else item.name
    if rng.random() < UNNAMED:
        name = rng.choice(UNNAMED_ITEM)
    condition = rng.choice((new, used))
    price = f"{rng.choice(CURRENCIES)} {item.price:.2f}".replace(".", rng.choice((".", ",")))
    title = rng.choice((f"{name} {condition} - {sale}", f"{sale}: {name}, {condition}", f"{name} | {price}"))
    parts = [desc, f"{rng.randint(1, 500)} {item.unit}", price, shipping]
    parts.append(_cue(COUNTERFEIT, lang, item.counterfeit, rng))
    parts.append(_cue(OFFPLATFORM, lang, item.offplatform, rng) or contact)
    if rng.random() < MIXED_LANGUAGE:
        parts.append(PHRASES[rng.choice(LANGUAGES)][rng.randrange(5)])
    parts = [part for part in parts if part]
    rng.shuffle(parts)
    description = " ".join(parts)
    if rng.random() < 0.3:
        description = f"{rng.choice(HTML_REMNANTS)}{description}{rng.choice(HTML_REMNANTS)}"
    if rng.random() < 0.3:
        title = _typo(title, rng)
    if rng.random() < 0.3:
        description = _typo(description, rng)
    return title, description


def _new_item(rng: random.Random) -> _Item:
    policy = rng.choices(POLICY_LABELS, weights=POLICY_WEIGHTS)[0]
    return _Item(
        policy=policy,
        name=rng.choice(POLICY_ITEMS[policy]),
        counterfeit=rng.random() < 0.18,
        offplatform=rng.random() < 0.15,
        price=round(rng.uniform(2, 900), 2),
        unit=rng.choice(UNITS),
    )


def generate(n_items: int, seed: int = 7) -> pd.DataFrame:
    """Generate the corpus.

    Args:
        n_items: Number of distinct items; re-listings and translations add about 35% more rows.
        seed: The corpus is a pure function of ``(n_items, seed)``.

    Returns:
        Columns ``id, title, description, lang, policy_label, is_prohibited, is_counterfeit,
        is_offplatform, relist_group, translation_group`` (groups are null for singletons).
    """
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []

    def add(item: _Item, lang: str, title: str, description: str, relist: str | None, translation: str | None) -> None:
        rows.append(
            {
                "id": f"L{len(rows):07d}",
                "title": title,
                "description": description,
                "lang": lang,
                "policy_label": item.policy,
                "is_prohibited": int(item.policy in PROHIBITED),
                "is_counterfeit": int(item.counterfeit),
                "is_offplatform": int(item.offplatform),
                "relist_group": relist,
                "translation_group": translation,
            }
        )

    for index in range(n_items):
        item = _new_item(rng)
        lang = rng.choice(LANGUAGES)
        roll = rng.random()
        if roll < 0.12:  # re-listed 2-3 times with paraphrase, obfuscation, new price or contact
            group = f"R{index:06d}"
            for copy in range(rng.randint(3, 4)):
                variant = item if copy == 0 else replace(item, price=round(item.price * rng.uniform(0.8, 1.2), 2))
                add(variant, lang, *_render(variant, lang, rng, obfuscate=copy > 0 and rng.random() < 0.6), group, None)
        elif roll < 0.22:  # the same item listed in 2-3 languages
            group = f"T{index:06d}"
            for other in rng.sample(LANGUAGES, rng.randint(3, 4)):
                add(item, other, *_render(item, other, rng), None, group)
        else:
            add(item, lang, *_render(item, lang, rng), None, None)
    return pd.DataFrame(rows)


def write(out_path: str | Path, n_items: int = 3000, seed: int = 7) -> str:
    """Generate the corpus and write it as Parquet (atomically).

    Args:
        out_path: A ``.parquet`` file or a folder (then ``listings.parquet`` inside it), local or gs://.
        n_items: Number of distinct items.
        seed: Random seed.

    Returns:
        Where the file was written.
    """
    target = str(out_path)
    if not target.endswith(".parquet"):
        target = storage.join(target, "listings.parquet")
    frame = generate(n_items, seed)
    storage.write_bytes(target, frame.to_parquet(index=False))
    return target
