from __future__ import annotations

import pytest

from chalicelib.domain import places
from chalicelib.domain.catalogue import Location

SHANGHAI = Location(31.2304, 121.4737)
GUANGZHOU = Location(23.1291, 113.2644)


@pytest.mark.parametrize(
    ("city", "english"),
    [
        ("上海", "Shanghai"),
        ("北京", "Beijing"),
        ("广州", "Guangzhou"),
        ("深圳", "Shenzhen"),
        ("成都", "Chengdu"),
        ("杭州", "Hangzhou"),
        ("武汉", "Wuhan"),
        ("西安", "Xi'an"),
        ("南京", "Nanjing"),
        ("重庆", "Chongqing"),
        ("天津", "Tianjin"),
        ("苏州", "Suzhou"),
    ],
)
def test_main_cities_are_found_by_chinese_and_english_name_alike(city: str, english: str) -> None:
    by_chinese = places.locate(city, None)
    assert by_chinese is not None
    assert places.locate(english, None) == by_chinese


@pytest.mark.parametrize(
    "written",
    [
        "上海市",
        " 上海 ",
        "上海 市",
        "shanghai",
        "SHANGHAI",
        "  Shanghai City ",
        "Shanghai Shi",
        "ＳＨＡＮＧＨＡＩ",
    ],
)
def test_city_names_ignore_case_spacing_width_and_administrative_suffix(written: str) -> None:
    assert places.locate(written, None) == SHANGHAI


@pytest.mark.parametrize("written", ["Xi'an", "Xian", "XI AN", "Xī'ān", "Xi’an Shi", "西安市"])
def test_xian_is_found_however_the_apostrophe_and_tones_are_written(written: str) -> None:
    assert places.find_city(written) is not None
    assert places.find_city(written).name_zh == "西安"


def test_an_unknown_city_falls_back_to_the_capital_of_its_region() -> None:
    assert places.locate("番禺区", "广东省") == GUANGZHOU
    assert places.locate("Panyu", "Guangdong Province") == GUANGZHOU


def test_a_known_city_wins_over_its_region() -> None:
    shenzhen = places.find_city("深圳")
    assert shenzhen is not None
    assert places.locate("深圳市", "广东省") == shenzhen.location


@pytest.mark.parametrize(
    ("region", "capital"),
    [
        ("广西壮族自治区", "南宁"),
        ("Guangxi Zhuang Autonomous Region", "南宁"),
        ("新疆维吾尔自治区", "乌鲁木齐"),
        ("Xinjiang Uyghur Autonomous Region", "乌鲁木齐"),
        ("内蒙古自治区", "呼和浩特"),
        ("Inner Mongolia", "呼和浩特"),
        ("西藏", "拉萨"),
        ("香港特别行政区", "香港"),
        ("Macao SAR", "澳门"),
        ("陕西省", "西安"),
        ("Shaanxi", "西安"),
        ("山西省", "太原"),
        ("Shanxi", "太原"),
        ("黑龙江省", "哈尔滨"),
        ("上海市", "上海"),
    ],
)
def test_regions_are_found_with_their_full_official_names(region: str, capital: str) -> None:
    found = places.find_region(region)
    assert found is not None
    assert found.capital.name_zh == capital


def test_a_region_field_holding_a_city_name_still_locates_it() -> None:
    assert places.locate(None, "苏州") == places.find_city("Suzhou").location


@pytest.mark.parametrize(("city", "region"), [("Atlantis", "Lemuria"), (None, None), ("", "  ")])
def test_an_unknown_place_has_no_location(city: str | None, region: str | None) -> None:
    assert places.locate(city, region) is None


def test_every_province_level_region_is_listed_once() -> None:
    # 4 municipalities, 23 provinces (Taiwan included), 5 autonomous regions, 2 SARs.
    assert len(places.REGIONS) == 34
    assert len({r.name_zh for r in places.REGIONS}) == 34


def test_at_least_forty_cities_with_plausible_coordinates() -> None:
    assert len(places.CITIES) >= 40
    for city in places.CITIES:
        assert 18 <= city.location.lat <= 54, city
        assert 73 <= city.location.lon <= 135, city
        assert city.name_zh and city.name_en


def test_every_name_leads_back_to_its_own_place() -> None:
    for city in places.CITIES:
        for name in city.names():
            assert places.find_city(name) is city
    for region in places.REGIONS:
        for name in region.names():
            assert places.find_region(name) is region


def test_nearest_city_to_a_point_in_pudong_is_shanghai() -> None:
    assert places.nearest_city(Location(31.22, 121.54)).name_en == "Shanghai"
    assert places.nearest_city(Location(22.55, 114.10)).name_en == "Shenzhen"


def test_every_listed_city_has_a_region_and_a_unique_id() -> None:
    ids = [places.city_id(city) for city in places.CITIES]

    assert len(set(ids)) == len(ids)
    assert all(places.region_of(city) in places.REGIONS for city in places.CITIES)


def test_a_city_lies_in_its_province_not_the_nearest_capital() -> None:
    suzhou = places.find_city("苏州")
    shanghai = places.find_city("上海")
    assert suzhou is not None and shanghai is not None

    assert places.region_of(suzhou).name_zh == "江苏"
    assert places.region_of(shanghai).name_zh == "上海"
    assert places.city_id(places.find_city("Xi'an")) == "xian"  # type: ignore[arg-type]
