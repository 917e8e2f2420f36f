from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.catalogue import (
    Category,
    LocalizedText,
    Location,
    Product,
    ProductDetails,
    Warehouse,
    WarehouseDetails,
    category_count_changes,
    nearest_first,
)
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money

SHANGHAI = Location(31.2304, 121.4737)
BEIJING = Location(39.9042, 116.4074)
GUANGZHOU = Location(23.1291, 113.2644)
CHENGDU = Location(30.5728, 104.0668)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def details(**overrides: object) -> ProductDetails:
    values: dict[str, object] = {
        "name": LocalizedText(zh_cn="无线蓝牙耳机 Pro", en="Wireless Earbuds Pro"),
        "category": "electronics",
        "price": Money(12900, "CNY"),
    }
    values.update(overrides)
    return ProductDetails(**values)  # type: ignore[arg-type]


def warehouse(warehouse_id: str, location: Location) -> Warehouse:
    return Warehouse.create(warehouse_id, WarehouseDetails("W", "City", location), T0)


def test_great_circle_distance_between_shanghai_and_beijing() -> None:
    # About 1,067 km as the crow flies.
    assert SHANGHAI.distance_km(BEIJING) == pytest.approx(1067, rel=0.01)
    assert BEIJING.distance_km(SHANGHAI) == pytest.approx(SHANGHAI.distance_km(BEIJING))
    assert SHANGHAI.distance_km(SHANGHAI) == 0


def test_distance_across_the_antimeridian_is_short() -> None:
    assert Location(0, 179.5).distance_km(Location(0, -179.5)) == pytest.approx(111.2, rel=0.01)


@pytest.mark.parametrize(
    ("lat", "lon"), [(91, 0), (-90.1, 0), (0, 180.5), (float("nan"), 0), (0, float("inf"))]
)
def test_location_outside_the_globe_is_invalid(lat: float, lon: float) -> None:
    with pytest.raises(InvalidInput):
        Location(lat, lon)


def test_warehouses_rank_nearest_first() -> None:
    hangzhou = Location(30.2741, 120.1551)
    ranked = nearest_first(
        [warehouse("gz", GUANGZHOU), warehouse("bj", BEIJING), warehouse("sh", SHANGHAI)],
        hangzhou,
    )
    assert [w.id for w in ranked] == ["sh", "gz", "bj"]


def test_equally_distant_warehouses_rank_by_id() -> None:
    ranked = nearest_first([warehouse("b", SHANGHAI), warehouse("a", SHANGHAI)], BEIJING)
    assert [w.id for w in ranked] == ["a", "b"]


def test_product_needs_a_name_in_at_least_one_language() -> None:
    with pytest.raises(InvalidInput):
        details(name=LocalizedText())
    assert details(name=LocalizedText(en="Kettle")).name.in_locale("zh-CN") == "Kettle"


def test_product_price_must_not_be_negative() -> None:
    with pytest.raises(InvalidInput):
        details(price=Money(-1, "CNY"))


@pytest.mark.parametrize("category", ["Electronics", "home kitchen", "", "-food", "a" * 49])
def test_category_must_be_a_lowercase_slug(category: str) -> None:
    with pytest.raises(InvalidInput):
        details(category=category)


@pytest.mark.parametrize("sku", ["", "has space", "斜/杠", "x" * 65])
def test_sku_must_be_a_well_formed_id(sku: str) -> None:
    with pytest.raises(InvalidInput):
        Product.create(sku, details(), T0)


def test_replacing_a_product_keeps_its_creation_time_and_bumps_the_version() -> None:
    original = Product.create("EAR-1", details(), T0)
    later = T0 + timedelta(days=1)
    replaced = original.replaced_by(details(price=Money(9900, "CNY")), later)
    assert replaced.price == Money(9900, "CNY")
    assert (replaced.created_at, replaced.updated_at) == (T0, later)
    assert replaced.version == original.version + 1
    assert replaced.details() == details(price=Money(9900, "CNY"))


def test_inactive_products_are_visible_to_staff_only() -> None:
    hidden = Product.create("EAR-1", details(active=False), T0)
    assert hidden.is_visible_to(staff=True)
    assert not hidden.is_visible_to(staff=False)


def test_localized_text_round_trips_and_trims() -> None:
    text = LocalizedText.from_mapping({"zh-CN": " 耳机 ", "en": None})
    assert text.as_dict() == {"zh-CN": "耳机"}
    assert text.in_locale("en") == "耳机"
    with pytest.raises(InvalidInput):
        LocalizedText.from_mapping({"fr": "écouteurs"})


def test_category_counts_move_only_for_active_products_that_change_category() -> None:
    product = Product.create("MUG-1", details(category="home"), T0)
    moved = product.replaced_by(details(category="garden"), T0)
    retired = product.replaced_by(details(category="home", active=False), T0)

    assert category_count_changes(None, product) == {"home": 1}
    assert category_count_changes(product, product) == {}
    assert category_count_changes(product, moved) == {"home": -1, "garden": 1}
    assert category_count_changes(product, retired) == {"home": -1}
    assert category_count_changes(None, retired) == {}
    assert Category("home", 3).name.as_dict() == {"zh-CN": "家居", "en": "Home"}
    assert Category("garden-tools", 1).name.en == "Garden tools"
