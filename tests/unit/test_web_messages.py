"""The web apps' texts: both languages have the same keys, and the shop names every event a
customer can switch off (the account page shows ``event.<name>`` for each)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.domain.notifications import NOTIFIABLE_EVENTS

WEB = Path(__file__).resolve().parents[2] / "web"
_KEY = re.compile(r'^\s+"?([\w.]+)"?:', re.M)
# Where each language's table starts in messages.js (the apps lay them out differently).
_TABLE_STARTS = {
    "shop": {"zh-CN": '\n  "zh-CN": {', "en": "\n  en: {"},
    "console": {"en": "\nconst en = {", "zh-CN": "\nconst zh = {"},
}


def _keys_by_language(app: str) -> dict[str, set[str]]:
    source = (WEB / app / "messages.js").read_text(encoding="utf-8")
    starts = {lang: source.index(marker) for lang, marker in _TABLE_STARTS[app].items()}
    ends = sorted([*starts.values(), len(source)])
    return {
        lang: set(_KEY.findall(source[start + 1 : ends[ends.index(start) + 1]].partition("\n")[2]))
        for lang, start in starts.items()
    }


@pytest.mark.parametrize("app", ["shop", "console"])
def test_both_languages_have_the_same_texts(app: str) -> None:
    keys = _keys_by_language(app)
    assert keys["zh-CN"] and keys["zh-CN"] == keys["en"], keys["zh-CN"] ^ keys["en"]


def test_the_shop_names_every_event_a_customer_can_switch_off() -> None:
    for language, keys in _keys_by_language("shop").items():
        missing = sorted(e for e in NOTIFIABLE_EVENTS if f"event.{e}" not in keys)
        assert not missing, (language, missing)
