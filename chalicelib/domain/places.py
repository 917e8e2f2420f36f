"""Where an address is when it comes without coordinates.

A shipping address may carry ``location``; when it does not, the city (or failing that the
province-level region, through its capital) gives a point close enough to rank warehouses
by distance. Names match in Chinese or English, ignoring case, spaces, punctuation, tone
marks and administrative suffixes (上海市, 广东省, "Guangdong Province", "Xi'an Shi").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from chalicelib.domain.catalogue import Location


@dataclass(frozen=True, slots=True)
class City:
    name_zh: str
    name_en: str
    location: Location
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.name_zh, self.name_en, *self.aliases)


@dataclass(frozen=True, slots=True)
class Region:
    """A province-level region; its capital stands in for an address with only a region."""

    name_zh: str
    name_en: str
    capital: City
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.name_zh, self.name_en, *self.aliases)


Place = TypeVar("Place", City, Region)


def _city(zh: str, en: str, lat: float, lon: float, *aliases: str) -> City:
    return City(name_zh=zh, name_en=en, location=Location(lat, lon), aliases=aliases)


# The main cities by population, plus every region capital. Coordinates are city centres.
# Ambiguous English spellings (台州/泰州 are both "Taizhou") are left out rather than guessed.
CITIES: tuple[City, ...] = (
    _city("上海", "Shanghai", 31.2304, 121.4737),
    _city("北京", "Beijing", 39.9042, 116.4074, "Peking"),
    _city("重庆", "Chongqing", 29.5630, 106.5516, "Chungking"),
    _city("天津", "Tianjin", 39.1336, 117.2054),
    _city("广州", "Guangzhou", 23.1291, 113.2644, "Canton"),
    _city("深圳", "Shenzhen", 22.5431, 114.0579),
    _city("成都", "Chengdu", 30.5728, 104.0668),
    _city("杭州", "Hangzhou", 30.2741, 120.1551),
    _city("武汉", "Wuhan", 30.5928, 114.3055),
    _city("西安", "Xi'an", 34.3416, 108.9398, "Xian"),
    _city("南京", "Nanjing", 32.0603, 118.7969),
    _city("苏州", "Suzhou", 31.2990, 120.5853),
    _city("郑州", "Zhengzhou", 34.7466, 113.6254),
    _city("长沙", "Changsha", 28.2282, 112.9388),
    _city("东莞", "Dongguan", 23.0207, 113.7518),
    _city("沈阳", "Shenyang", 41.8057, 123.4315),
    _city("青岛", "Qingdao", 36.0671, 120.3826, "Tsingtao"),
    _city("合肥", "Hefei", 31.8206, 117.2272),
    _city("佛山", "Foshan", 23.0215, 113.1214),
    _city("宁波", "Ningbo", 29.8683, 121.5440),
    _city("昆明", "Kunming", 25.0389, 102.7183),
    _city("济南", "Jinan", 36.6512, 117.1201),
    _city("哈尔滨", "Harbin", 45.8038, 126.5350, "Haerbin"),
    _city("大连", "Dalian", 38.9140, 121.6147),
    _city("福州", "Fuzhou", 26.0745, 119.2965),
    _city("厦门", "Xiamen", 24.4798, 118.0894, "Amoy"),
    _city("长春", "Changchun", 43.8171, 125.3235),
    _city("石家庄", "Shijiazhuang", 38.0428, 114.5149),
    _city("南宁", "Nanning", 22.8170, 108.3665),
    _city("南昌", "Nanchang", 28.6820, 115.8579),
    _city("贵阳", "Guiyang", 26.6470, 106.6302),
    _city("太原", "Taiyuan", 37.8706, 112.5489),
    _city("无锡", "Wuxi", 31.4912, 120.3119),
    _city("温州", "Wenzhou", 27.9943, 120.6994),
    _city("泉州", "Quanzhou", 24.8741, 118.6757),
    _city("乌鲁木齐", "Urumqi", 43.8256, 87.6168, "Wulumuqi"),
    _city("兰州", "Lanzhou", 36.0611, 103.8343),
    _city("常州", "Changzhou", 31.8107, 119.9741),
    _city("徐州", "Xuzhou", 34.2610, 117.1859),
    _city("南通", "Nantong", 31.9802, 120.8943),
    _city("惠州", "Huizhou", 23.1115, 114.4152),
    _city("珠海", "Zhuhai", 22.2710, 113.5767),
    _city("中山", "Zhongshan", 22.5176, 113.3926),
    _city("汕头", "Shantou", 23.3541, 116.6820),
    _city("烟台", "Yantai", 37.4638, 121.4479),
    _city("潍坊", "Weifang", 36.7069, 119.1618),
    _city("临沂", "Linyi", 35.1041, 118.3564),
    _city("淄博", "Zibo", 36.8131, 118.0550),
    _city("绍兴", "Shaoxing", 29.9958, 120.5861),
    _city("嘉兴", "Jiaxing", 30.7469, 120.7555),
    _city("金华", "Jinhua", 29.0790, 119.6474),
    _city("扬州", "Yangzhou", 32.3942, 119.4129),
    _city("芜湖", "Wuhu", 31.3526, 118.4331),
    _city("洛阳", "Luoyang", 34.6197, 112.4540),
    _city("南阳", "Nanyang", 32.9908, 112.5283),
    _city("唐山", "Tangshan", 39.6309, 118.1802),
    _city("保定", "Baoding", 38.8739, 115.4646),
    _city("邯郸", "Handan", 36.6256, 114.5391),
    _city("襄阳", "Xiangyang", 32.0090, 112.1225),
    _city("宜昌", "Yichang", 30.6919, 111.2865),
    _city("赣州", "Ganzhou", 25.8310, 114.9336),
    _city("绵阳", "Mianyang", 31.4675, 104.6796),
    _city("桂林", "Guilin", 25.2736, 110.2900),
    _city("包头", "Baotou", 40.6574, 109.8403),
    _city("大庆", "Daqing", 46.5893, 125.1036),
    _city("海口", "Haikou", 20.0440, 110.1999),
    _city("三亚", "Sanya", 18.2528, 109.5120),
    _city("呼和浩特", "Hohhot", 40.8424, 111.7490, "Huhehaote"),
    _city("银川", "Yinchuan", 38.4872, 106.2309),
    _city("西宁", "Xining", 36.6171, 101.7782),
    _city("拉萨", "Lhasa", 29.6520, 91.1721, "Lasa"),
    _city("香港", "Hong Kong", 22.3193, 114.1694),
    _city("澳门", "Macau", 22.1987, 113.5439, "Macao", "Aomen"),
    _city("台北", "Taipei", 25.0330, 121.5654, "Taibei"),
)

_CITY_BY_ZH = {city.name_zh: city for city in CITIES}


def _region(zh: str, en: str, capital_zh: str, *aliases: str) -> Region:
    return Region(name_zh=zh, name_en=en, capital=_CITY_BY_ZH[capital_zh], aliases=aliases)


# Every province-level region: 4 municipalities, 23 provinces, 5 autonomous regions, 2 SARs.
REGIONS: tuple[Region, ...] = (
    _region("北京", "Beijing", "北京"),
    _region("天津", "Tianjin", "天津"),
    _region("上海", "Shanghai", "上海"),
    _region("重庆", "Chongqing", "重庆"),
    _region("河北", "Hebei", "石家庄"),
    _region("山西", "Shanxi", "太原"),
    _region("辽宁", "Liaoning", "沈阳"),
    _region("吉林", "Jilin", "长春"),
    _region("黑龙江", "Heilongjiang", "哈尔滨"),
    _region("江苏", "Jiangsu", "南京"),
    _region("浙江", "Zhejiang", "杭州"),
    _region("安徽", "Anhui", "合肥"),
    _region("福建", "Fujian", "福州"),
    _region("江西", "Jiangxi", "南昌"),
    _region("山东", "Shandong", "济南"),
    _region("河南", "Henan", "郑州"),
    _region("湖北", "Hubei", "武汉"),
    _region("湖南", "Hunan", "长沙"),
    _region("广东", "Guangdong", "广州"),
    _region("海南", "Hainan", "海口"),
    _region("四川", "Sichuan", "成都"),
    _region("贵州", "Guizhou", "贵阳"),
    _region("云南", "Yunnan", "昆明"),
    _region("陕西", "Shaanxi", "西安"),
    _region("甘肃", "Gansu", "兰州"),
    _region("青海", "Qinghai", "西宁"),
    _region("台湾", "Taiwan", "台北"),
    _region("内蒙古", "Inner Mongolia", "呼和浩特", "Nei Mongol", "Neimenggu"),
    _region("广西", "Guangxi", "南宁", "广西壮族", "Guangxi Zhuang"),
    _region("西藏", "Tibet", "拉萨", "Xizang"),
    _region("宁夏", "Ningxia", "银川", "宁夏回族", "Ningxia Hui"),
    _region("新疆", "Xinjiang", "乌鲁木齐", "新疆维吾尔", "Xinjiang Uyghur", "Xinjiang Uygur"),
    _region("香港", "Hong Kong", "香港"),
    _region("澳门", "Macau", "澳门", "Macao", "Aomen"),
)

# Administrative words people add to a place name, in normalized form (see _normalize).
_SUFFIXES = (
    "specialadministrativeregion",
    "autonomousregion",
    "municipality",
    "province",
    "特别行政区",
    "自治区",
    "region",
    "sheng",
    "city",
    "sar",
    "shi",
    "省",
    "市",
)


def _normalize(name: str) -> str:
    """Case-folded letters and digits only: "Xī'ān  Shi" -> "xianshi", "上海 市" -> "上海市"."""
    decomposed = unicodedata.normalize("NFKD", name)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in without_marks.casefold() if ch.isalnum())


def _index(places: Iterable[Place]) -> dict[str, Place]:
    index: dict[str, Place] = {}
    for place in places:
        for name in place.names():
            key = _normalize(name)
            if key in index and index[key] is not place:
                raise ValueError(f"Place name {name!r} is ambiguous")
            index[key] = place
    return index


_CITIES = _index(CITIES)
_REGIONS = _index(REGIONS)


def _lookup(index: dict[str, Place], name: str | None) -> Place | None:
    if not name:
        return None
    # Try the name as written first, so a name that happens to end like a suffix
    # (a hypothetical "...shi") is never mangled; then peel suffixes, at most two deep
    # ("Guangxi Zhuang Autonomous Region" -> "guangxizhuang").
    pending = [_normalize(name)]
    for _ in range(3):
        shorter: list[str] = []
        for key in pending:
            if key in index:
                return index[key]
            shorter.extend(key[: -len(s)] for s in _SUFFIXES if key.endswith(s) and key != s)
        pending = shorter
    return None


# The province-level region of each listed city that is not itself a region's capital.
_REGION_OF_CITY = {
    "深圳": "广东", "东莞": "广东", "佛山": "广东", "惠州": "广东", "珠海": "广东",
    "中山": "广东", "汕头": "广东", "苏州": "江苏", "无锡": "江苏", "常州": "江苏",
    "徐州": "江苏", "南通": "江苏", "扬州": "江苏", "宁波": "浙江", "温州": "浙江",
    "绍兴": "浙江", "嘉兴": "浙江", "金华": "浙江", "青岛": "山东", "烟台": "山东",
    "潍坊": "山东", "临沂": "山东", "淄博": "山东", "大连": "辽宁", "厦门": "福建",
    "泉州": "福建", "芜湖": "安徽", "洛阳": "河南", "南阳": "河南", "唐山": "河北",
    "保定": "河北", "邯郸": "河北", "襄阳": "湖北", "宜昌": "湖北", "赣州": "江西",
    "绵阳": "四川", "桂林": "广西", "包头": "内蒙古", "大庆": "黑龙江", "三亚": "海南",
}  # fmt: skip
_REGION_BY_ZH = {region.name_zh: region for region in REGIONS}
_REGION_BY_CAPITAL = {region.capital.name_zh: region for region in REGIONS}


def region_of(city: City) -> Region:
    """The province-level region ``city`` lies in."""
    capital_of = _REGION_BY_CAPITAL.get(city.name_zh)
    return capital_of or _REGION_BY_ZH[_REGION_OF_CITY[city.name_zh]]


def city_id(city: City) -> str:
    """A stable slug for a listed city: its English name in lowercase letters only."""
    return "".join(ch for ch in city.name_en.casefold() if ch.isalnum())


def find_city(name: str | None) -> City | None:
    return _lookup(_CITIES, name)


def find_region(name: str | None) -> Region | None:
    return _lookup(_REGIONS, name)


def locate(city: str | None, region: str | None) -> Location | None:
    """The best known point for an address: its city, else its region's capital, else None.

    A region field that holds a city name (people do write 苏州 there) still counts.
    """
    found_city = find_city(city)
    if found_city is not None:
        return found_city.location
    found_region = find_region(region)
    if found_region is not None:
        return found_region.capital.location
    region_as_city = find_city(region)
    return region_as_city.location if region_as_city is not None else None


def nearest_city(location: Location) -> City:
    """The listed city closest to ``location`` (ties go to the earlier, larger city)."""
    return min(CITIES, key=lambda city: location.distance_km(city.location))
