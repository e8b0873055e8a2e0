"""A deterministic, multilingual synthetic listing corpus for the demo and the tests.

Each listing has a title and a description in one of 16 languages (Latin and non-Latin scripts),
an exclusive policy label, three binary integrity labels and two similarity groups:

* ``is_prohibited`` is a function of the policy label;
* ``is_counterfeit`` (replica cues) and ``is_offplatform`` (off-platform payment or contact) are
  drawn independently of it, so a linear head on the embeddings has something of its own to learn;
* ``relist_group`` ties an item to re-listings of it: paraphrased, obfuscated (``v1agra``, spaced
  letters, emoji), with a changed price or contact; ``translation_group`` ties it to translations.

Text carries realistic noise: typos, mixed languages, HTML remnants, prices and units.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from commerce_lm import storage

# Localised listing phrases: (for sale, brand new, used, fast shipping, contact me, description).
PHRASES: dict[str, tuple[str, str, str, str, str, str]] = {
    "en": (
        "for sale",
        "brand new",
        "lightly used",
        "fast shipping",
        "message me",
        "Great condition, original box included.",
    ),
    "de": (
        "zu verkaufen",
        "neu",
        "kaum benutzt",
        "schneller Versand",
        "schreib mir",
        "Top Zustand, Originalverpackung dabei.",
    ),
    "fr": (
        "à vendre",
        "neuf",
        "peu utilisé",
        "livraison rapide",
        "contactez-moi",
        "Très bon état, boîte d'origine incluse.",
    ),
    "es": ("se vende", "nuevo", "poco uso", "envío rápido", "escríbeme", "Excelente estado, incluye caja original."),
    "it": (
        "vendo",
        "nuovo",
        "poco usato",
        "spedizione veloce",
        "scrivimi",
        "Ottime condizioni, scatola originale inclusa.",
    ),
    "pt": ("vendo", "novo", "pouco usado", "envio rápido", "fale comigo", "Ótimo estado, caixa original incluída."),
    "nl": (
        "te koop",
        "nieuw",
        "weinig gebruikt",
        "snelle verzending",
        "stuur een bericht",
        "Prima staat, originele doos erbij.",
    ),
    "pl": (
        "sprzedam",
        "nowy",
        "mało używany",
        "szybka wysyłka",
        "napisz do mnie",
        "Stan idealny, oryginalne pudełko w zestawie.",
    ),
    "tr": ("satılık", "sıfır", "az kullanılmış", "hızlı kargo", "mesaj at", "Temiz durumda, orijinal kutusuyla."),
    "vi": ("cần bán", "mới", "ít dùng", "giao hàng nhanh", "nhắn tin cho tôi", "Tình trạng tốt, còn hộp gốc."),
    "ru": (
        "продам",
        "новый",
        "почти не использовался",
        "быстрая доставка",
        "пишите",
        "Отличное состояние, оригинальная коробка.",
    ),
    "ja": ("販売", "新品", "美品", "迅速発送", "ご連絡ください", "状態良好、元箱付きです。"),
    "zh": ("出售", "全新", "轻微使用", "快速发货", "联系我", "成色很好，带原包装盒。"),
    "ar": ("للبيع", "جديد", "مستعمل قليلا", "شحن سريع", "راسلني", "حالة ممتازة مع العلبة الأصلية."),
    "hi": ("बिक्री के लिए", "नया", "थोड़ा इस्तेमाल", "तेज़ शिपिंग", "मुझे संदेश करें", "बढ़िया हालत, मूल डिब्बा साथ में।"),
    "ko": ("판매합니다", "새상품", "사용감 적음", "빠른 배송", "연락주세요", "상태 좋고 정품 박스 포함입니다."),
}
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

REPLICA_CUES = ("1:1 replica", "AAA quality copy", "mirror quality", "high copy", "inspired version, unbranded")
OFFPLATFORM_CUES = (
    "WhatsApp {phone}",
    "pay via Western Union only",
    "telegram @{handle}",
    "wire money first",
    "contact {handle}@gmail.com",
    "PayPal friends and family only",
)
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


def _render(item: _Item, lang: str, rng: random.Random, obfuscate: bool = False) -> tuple[str, str]:
    """One listing (title, description) of ``item`` in ``lang``, with fresh noise."""
    sale, new, used, shipping, contact, desc = PHRASES[lang]
    name = _obfuscate(item.name, rng) if obfuscate else item.name
    condition = rng.choice((new, used))
    price = f"{rng.choice(CURRENCIES)} {item.price:.2f}".replace(".", rng.choice((".", ",")))
    title = rng.choice((f"{name} {condition} - {sale}", f"{sale}: {name}, {condition}", f"{name} | {price}"))
    parts = [desc, f"{rng.randint(1, 500)} {item.unit}", price, shipping]
    if item.counterfeit:
        parts.append(rng.choice(REPLICA_CUES))
    if item.offplatform:
        parts.append(rng.choice(OFFPLATFORM_CUES).format(**_contact(rng)))
    else:
        parts.append(contact)
    if lang != "en" and rng.random() < 0.25:  # mixed-language listings are common
        parts.append(PHRASES["en"][rng.randrange(5)])
    rng.shuffle(parts)
    description = " ".join(parts)
    if rng.random() < 0.3:
        description = f"{rng.choice(HTML_REMNANTS)}{description}{rng.choice(HTML_REMNANTS)}"
    if rng.random() < 0.3:
        title = _typo(title, rng)
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
