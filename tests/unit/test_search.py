import pytest

from chalicelib.domain.search import (
    SearchDocument,
    SearchQuery,
    description_terms,
    name_terms,
    rank,
    score,
)

EARBUDS = SearchDocument.of(
    names=["无线蓝牙耳机 Pro", "Wireless Bluetooth Earbuds Pro"],
    descriptions=["主动降噪，续航30小时。", "Active noise cancelling, 30-hour battery."],
)
KETTLE = SearchDocument.of(
    names=["电热水壶", "Electric Kettle"],
    descriptions=["1.7升大容量，适合蓝牙音箱旁使用", "1.7 litre, boils in three minutes."],
)


def matches(query: str, document: SearchDocument = EARBUDS) -> bool:
    return score(SearchQuery.parse(query), document) > 0


@pytest.mark.parametrize(
    "query", ["蓝牙耳机", "耳机", "无线", "蓝牙", "耳", "无线蓝牙耳机", "耳机pro"]
)
def test_chinese_queries_match_without_spaces(query: str) -> None:
    assert matches(query)


@pytest.mark.parametrize("query", ["耳蓝", "机无", "音箱", "水壶"])
def test_chinese_query_needs_its_characters_in_that_order(query: str) -> None:
    assert not matches(query)


@pytest.mark.parametrize("query", ["bluetooth", "BLUETOOTH", "BlueTooth", "ＰＲＯ", "blue", "ear"])
def test_english_is_case_insensitive_and_matches_name_prefixes(query: str) -> None:
    assert matches(query)


def test_every_query_word_must_match() -> None:
    assert matches("wireless earbuds")
    assert not matches("wireless kettle")


def test_descriptions_match_whole_words_and_chinese_bigrams() -> None:
    assert matches("noise")
    assert matches("降噪")
    assert matches("30小时")
    # Descriptions do not index prefixes: only names do.
    assert not matches("nois")


def test_single_letters_and_punctuation_make_an_empty_query() -> None:
    assert SearchQuery.parse("a - !").is_empty()
    assert not matches("!!!")


def test_cjk_text_yields_unigrams_and_bigrams_in_names() -> None:
    assert name_terms("蓝牙耳机") == {"蓝", "牙", "耳", "机", "蓝牙", "牙耳", "耳机"}


def test_description_terms_skip_unigrams_and_prefixes() -> None:
    assert description_terms("蓝牙耳机 Bluetooth") == {"蓝牙", "牙耳", "耳机", "bluetooth"}


def test_query_turns_chinese_runs_into_bigrams_and_words_into_lowercase() -> None:
    assert SearchQuery.parse("蓝牙耳机 PRO").terms == ("蓝牙", "牙耳", "耳机", "pro")
    assert SearchQuery.parse("耳").terms == ("耳",)


def test_name_matches_rank_above_description_matches() -> None:
    # "蓝牙" is in the earbuds' name but only in the kettle's description.
    ranked = rank(SearchQuery.parse("蓝牙"), [("kettle", KETTLE), ("earbuds", EARBUDS)])
    assert [key for _, key in ranked] == ["earbuds", "kettle"]


def test_equal_scores_rank_by_key_and_non_matches_are_dropped() -> None:
    ranked = rank(SearchQuery.parse("耳机"), [("b", EARBUDS), ("a", EARBUDS), ("c", KETTLE)])
    assert [key for _, key in ranked] == ["a", "b"]


def test_phrase_in_name_beats_the_same_words_scattered() -> None:
    scattered = SearchDocument.of(names=["Pro Wireless Earbuds"], descriptions=[])
    exact = SearchDocument.of(names=["Wireless Earbuds Pro"], descriptions=[])
    query = SearchQuery.parse("earbuds pro")
    assert score(query, exact) > score(query, scattered) > 0
