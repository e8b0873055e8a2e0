"""The words of the demo listings in every demo language: listing phrases, integrity cues, look-alikes.

A cue that is one fixed English phrase is a giveaway token: any encoder finds it, and the demo can
no longer tell a good objective from a bad one. So each cue comes in the listing's language (and,
less often, in English, as sellers mix languages), with three kinds of doubt an integrity team
knows:

* **explicit** cues say it outright (``réplique 1:1``, ``WhatsApp +33 ...``);
* **implicit** cues only hint (no box or papers; a price "to discuss in private"), and also appear,
  less often, on honest listings;
* **denials** are honest listings that use the same words to say the opposite ("100% original,
  not a replica"; "pay through the site only, no WhatsApp"), the hard negatives.

Placeholders ``{phone}`` and ``{handle}`` are filled per listing.
"""

from __future__ import annotations

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
# lang -> (explicit replica cues, implicit counterfeit hint, authenticity claim (a denial)).
COUNTERFEIT: dict[str, tuple[tuple[str, str], str, str]] = {
    "en": (("replica, AAA quality", "exact copy of the original"), "no box or papers", "100% original, not a replica"),
    "de": (("Replik in Top-Qualität", "1:1 Nachbau"), "ohne Karton und Papiere", "100% original, keine Replik"),
    "fr": (("réplique qualité 1:1", "copie haute qualité"), "sans boîte ni papiers", "100% authentique, pas une copie"),
    "es": (("réplica calidad AAA", "copia exacta"), "sin caja ni papeles", "100% original, no es réplica"),
    "it": (
        ("replica perfetta", "copia di alta qualità"),
        "senza scatola né documenti",
        "originale al 100%, non replica",
    ),
    "pt": (("réplica de primeira linha", "cópia perfeita"), "sem caixa nem nota", "100% original, não é réplica"),
    "nl": (("replica topkwaliteit", "exacte kopie"), "zonder doos of papieren", "100% echt, geen replica"),
    "pl": (("replika 1:1", "kopia wysokiej jakości"), "bez pudełka i dokumentów", "100% oryginał, nie replika"),
    "tr": (("birebir replika", "A kalite kopya"), "kutusuz ve faturasız", "%100 orijinal, replika değildir"),
    "vi": (
        ("hàng fake loại 1", "hàng nhái cao cấp"),
        "không hộp không giấy tờ",
        "chính hãng 100%, không phải hàng fake",
    ),
    "ru": (("реплика 1:1", "копия высокого качества"), "без коробки и документов", "100% оригинал, не реплика"),
    "ja": (("コピー品", "スーパーコピー"), "箱・保証書なし", "正規品です、コピー品ではありません"),
    "zh": (("高仿", "一比一复刻"), "无盒无票", "正品保证，非高仿"),
    "ar": (("نسخة طبق الأصل", "تقليد درجة أولى"), "بدون علبة أو أوراق", "أصلي 100% وليس تقليد"),
    "hi": (("फर्स्ट कॉपी", "हूबहू नकल"), "बिना डिब्बे और बिल के", "100% असली, कॉपी नहीं"),
    "ko": (("레플리카", "정품급 이미테이션"), "박스 보증서 없음", "100% 정품, 레플리카 아님"),
}

# lang -> (explicit off-platform cues, implicit hint, on-platform claim (a denial)).
OFFPLATFORM: dict[str, tuple[tuple[str, str], str, str]] = {
    "en": (
        ("WhatsApp {phone}", "pay by wire transfer first"),
        "better price in private",
        "pay through the site only, no WhatsApp",
    ),
    "de": (
        ("nur Überweisung vorab", "WhatsApp {phone}"),
        "Preis privat verhandelbar",
        "Zahlung nur über die Plattform, kein WhatsApp",
    ),
    "fr": (
        ("paiement par virement uniquement", "WhatsApp {phone}"),
        "meilleur prix en privé",
        "paiement via le site uniquement",
    ),
    "es": (
        ("pago solo por transferencia", "escríbeme al WhatsApp {phone}"),
        "mejor precio por privado",
        "pago solo por la plataforma",
    ),
    "it": (
        ("pagamento solo con bonifico", "Telegram @{handle}"),
        "prezzo migliore in privato",
        "pagamento solo tramite il sito",
    ),
    "pt": (
        ("pagamento só por Pix direto", "chama no zap {phone}"),
        "preço melhor no privado",
        "pagamento só pela plataforma",
    ),
    "nl": (
        ("betalen via Tikkie buiten de site", "app me op {phone}"),
        "betere prijs privé",
        "betalen alleen via de site",
    ),
    "pl": (
        ("płatność tylko przelewem z góry", "WhatsApp {phone}"),
        "lepsza cena na priv",
        "płatność tylko przez serwis",
    ),
    "tr": (("ödeme sadece havale ile", "WhatsApp {phone}"), "özelden daha iyi fiyat", "ödeme sadece site üzerinden"),
    "vi": (
        ("chuyển khoản trước qua ngân hàng", "liên hệ Zalo {phone}"),
        "giá tốt hơn khi inbox riêng",
        "chỉ thanh toán qua sàn",
    ),
    "ru": (
        ("оплата только переводом на карту", "Телеграм @{handle}"),
        "цена лучше в личке",
        "оплата только через сайт",
    ),
    "ja": (("LINE ID: {handle}", "銀行振込のみ（先払い）"), "個別に値引き相談", "お支払いはサイト経由のみ"),
    "zh": (("加微信 {handle}", "只收银行转账，先付款"), "私聊价格更优", "只通过平台交易"),
    "ar": (("الدفع بالتحويل فقط", "واتساب {phone}"), "سعر أفضل على الخاص", "الدفع عبر الموقع فقط"),
    "hi": (("सिर्फ़ UPI से अग्रिम भुगतान", "व्हाट्सऐप {phone}"), "निजी में बेहतर दाम", "भुगतान सिर्फ़ साइट से"),
    "ko": (("카톡 ID {handle}", "선입금 계좌이체만"), "개인 연락 시 할인", "결제는 사이트에서만"),
}

# Allowed items that share words with prohibited ones (a toy pistol, vitamin gummies), so the
# prohibited task is about what an item is, not whether a word like "pistol" appears.
LOOKALIKES = (
    "Nerf blaster toy pistol",
    "kitchen knife set",
    "vitamin D gummies",
    "power bank 20000mAh",
    "faux fur tiger print rug",
    "herbal sleep tea",
    "nicotine-free herbal tea",
    "fertilizer for tomato plants",
)
