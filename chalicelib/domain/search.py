"""Search terms for a bilingual (zh-CN / en) catalogue, and how matches are ranked.

Chinese is written without spaces, so it is indexed as character n-grams rather than
words: a run of CJK characters yields its unigrams and bigrams ("无线蓝牙耳机" →
无, 线, …, 无线, 线蓝, 蓝牙, 牙耳, 耳机). A query's CJK run becomes its bigrams (or its
one character), so "蓝牙耳机" and "耳机" both find "无线蓝牙耳机 Pro" without any
dictionary. Latin-script text is NFKC-normalised and case-folded (full-width "ＰＲＯ"
becomes "pro"), split into words, and names also index each word's prefixes so "blue"
finds "Bluetooth".

Descriptions are longer, so they index less: CJK bigrams (a lone CJK character as a
unigram) and whole words, no prefixes. A product matches a query when every query term
is among the product's terms; single-letter words in a query carry no meaning alone and
are ignored.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

MIN_WORD_CHARS = 2
# Longer words are indexed and searched by their first characters only.
MAX_WORD_CHARS = 20
# A long query is cut to its first terms; the rest would only narrow an already tiny set.
MAX_QUERY_TERMS = 16
NAME_WEIGHT = 3
DESCRIPTION_WEIGHT = 1
WHOLE_WORD_BONUS = 1
NAME_PHRASE_BONUS = 10
DESCRIPTION_PHRASE_BONUS = 2

# Han (incl. extensions and compatibility ideographs), kana and Hangul: scripts written
# without spaces between words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_SPACES = re.compile(r"\s+")

Key = TypeVar("Key")


def normalize(text: str) -> str:
    """Full-width forms to ASCII, compatibility characters folded, case folded."""
    return unicodedata.normalize("NFKC", text).casefold()


@functools.cache
def _segment_pattern() -> re.Pattern[str]:
    # Compiled on first use: the Unicode ranges make it slow enough to matter at cold start.
    return re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>(?:(?![{_CJK}])[^\W_])+)")


def segments(text: str) -> Iterator[tuple[bool, str]]:
    """``(is_cjk, run)`` for each CJK run and each word of ``normalize(text)``."""
    for match in _segment_pattern().finditer(normalize(text)):
        cjk = match.group("cjk")
        yield (True, cjk) if cjk else (False, match.group("word"))


def _cjk_terms(run: str, *, unigrams: bool) -> Iterator[str]:
    if unigrams or len(run) == 1:
        yield from run
    for start in range(len(run) - 1):
        yield run[start : start + 2]


def _word_terms(word: str, *, prefixes: bool) -> Iterator[str]:
    if len(word) < MIN_WORD_CHARS:
        return
    cut = word[:MAX_WORD_CHARS]
    if prefixes:
        for end in range(MIN_WORD_CHARS, len(cut)):
            yield cut[:end]
    yield cut


def name_terms(text: str) -> set[str]:
    """Index terms for a name: CJK unigrams and bigrams, words and their prefixes."""
    terms: set[str] = set()
    for is_cjk, run in segments(text):
        terms.update(_cjk_terms(run, unigrams=True) if is_cjk else _word_terms(run, prefixes=True))
    return terms


def description_terms(text: str) -> set[str]:
    """Index terms for a description: CJK bigrams and whole words."""
    terms: set[str] = set()
    for is_cjk, run in segments(text):
        terms.update(
            _cjk_terms(run, unigrams=False) if is_cjk else _word_terms(run, prefixes=False)
        )
    return terms


def _whole_words(text: str) -> set[str]:
    return {
        run[:MAX_WORD_CHARS]
        for is_cjk, run in segments(text)
        if not is_cjk and len(run) >= MIN_WORD_CHARS
    }


def _phrase_text(text: str) -> str:
    return _SPACES.sub(" ", normalize(text)).strip()


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    terms: tuple[str, ...]
    words: tuple[str, ...]

    @classmethod
    def parse(cls, query: str) -> SearchQuery:
        terms: dict[str, None] = {}  # insertion-ordered set
        words: dict[str, None] = {}
        for is_cjk, run in segments(query):
            if is_cjk:
                # A query run must appear as a whole: its bigrams, or its one character.
                run_terms = [run] if len(run) == 1 else list(_cjk_terms(run, unigrams=False))
            elif len(run) >= MIN_WORD_CHARS:
                run_terms = [run[:MAX_WORD_CHARS]]
                words[run[:MAX_WORD_CHARS]] = None
            else:
                run_terms = []
            terms.update(dict.fromkeys(run_terms))
        return cls(
            text=_phrase_text(query),
            terms=tuple(terms)[:MAX_QUERY_TERMS],
            words=tuple(words),
        )

    def is_empty(self) -> bool:
        return not self.terms


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """What search knows about one product: its index terms and its normalised text."""

    name_terms: frozenset[str]
    description_terms: frozenset[str]
    name_words: frozenset[str]
    name_text: str
    description_text: str

    @classmethod
    def of(cls, *, names: Iterable[str], descriptions: Iterable[str]) -> SearchDocument:
        names, descriptions = tuple(names), tuple(descriptions)
        return cls(
            name_terms=frozenset(t for text in names for t in name_terms(text)),
            description_terms=frozenset(
                t for text in descriptions for t in description_terms(text)
            ),
            name_words=frozenset(w for text in names for w in _whole_words(text)),
            name_text="\n".join(_phrase_text(text) for text in names),
            description_text="\n".join(_phrase_text(text) for text in descriptions),
        )

    @property
    def terms(self) -> frozenset[str]:
        """Every term the index holds for this document."""
        return self.name_terms | self.description_terms


def score(query: SearchQuery, document: SearchDocument) -> int:
    """0 when ``document`` does not match; otherwise higher is more relevant.

    Each query term counts more when it is in the name than only in the description;
    whole words beat prefixes; the query as a phrase in the name ranks highest.
    """
    if query.is_empty():
        return 0
    total = 0
    for term in query.terms:
        if term in document.name_terms:
            total += NAME_WEIGHT
        elif term in document.description_terms:
            total += DESCRIPTION_WEIGHT
        else:
            return 0
    total += WHOLE_WORD_BONUS * sum(1 for word in query.words if word in document.name_words)
    if query.text and query.text in document.name_text:
        total += NAME_PHRASE_BONUS
    elif query.text and query.text in document.description_text:
        total += DESCRIPTION_PHRASE_BONUS
    return total


def rank(
    query: SearchQuery, documents: Iterable[tuple[Key, SearchDocument]]
) -> list[tuple[int, Key]]:
    """Matching ``(score, key)`` pairs, best first; equal scores in key order."""
    scored = ((score(query, document), key) for key, document in documents)
    return sorted(
        ((points, key) for points, key in scored if points > 0),
        key=lambda pair: (-pair[0], pair[1]),  # type: ignore[operator]
    )
