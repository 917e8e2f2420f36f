"""The catalogue: products shoppers can buy, and the warehouses that ship them.

Everything here is plain Python. Constructors enforce the invariants, so a ``Product``
or ``Warehouse`` that exists is valid, whichever door it came in by (API, demo data, a
later import job).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from chalicelib.domain import search
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.money import Money
from chalicelib.domain.replenishment import ReorderPolicy

# SKUs, warehouse ids and user ids share one shape; it ends up inside storage keys.
ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Categories are slugs ("electronics", "home-kitchen"): stable in URLs and index keys.
CATEGORY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
ZH_CN = "zh-CN"
EN = "en"
LOCALES = (ZH_CN, EN)
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
# Six decimal places of a degree is about 0.1 m: more is noise, and stored numbers stay tidy.
COORDINATE_DECIMALS = 6


# Display names of the categories in use; any other slug is shown by its own words.
CATEGORY_NAMES: Mapping[str, tuple[str, str]] = {
    "electronics": ("数码电子", "Electronics"),
    "home": ("家居", "Home"),
    "home-kitchen": ("家居厨房", "Home & Kitchen"),
    "apparel": ("服饰", "Apparel"),
    "beauty": ("美妆个护", "Beauty"),
    "food": ("食品", "Food"),
    "sports": ("运动户外", "Sports & Outdoors"),
    "books": ("图书", "Books"),
    "toys": ("玩具", "Toys"),
}


@dataclass(frozen=True, slots=True)
class Category:
    """A category shoppers can browse, with how many active products it holds."""

    id: str
    product_count: int

    @property
    def name(self) -> LocalizedText:
        zh_cn, en = CATEGORY_NAMES.get(self.id) or (None, None)
        fallback = self.id.replace("-", " ").capitalize()
        return LocalizedText(zh_cn=zh_cn or fallback, en=en or fallback)


def category_count_changes(before: Product | None, after: Product) -> dict[str, int]:
    """How a product write moves the active-product count of each category it touches."""
    changes: dict[str, int] = {}
    if before is not None and before.active:
        changes[before.category] = changes.get(before.category, 0) - 1
    if after.active:
        changes[after.category] = changes.get(after.category, 0) + 1
    return {category: delta for category, delta in changes.items() if delta}


class ProductNotFound(NotFound):
    def __init__(self, sku: str) -> None:
        super().__init__(f"Product {sku} was not found.", {"sku": sku})


class WarehouseNotFound(NotFound):
    def __init__(self, warehouse_id: str) -> None:
        super().__init__(f"Warehouse {warehouse_id} was not found.", {"warehouse": warehouse_id})


def require_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"{what} must be 1-64 letters, digits, '.', '_' or '-'.",
            [{"field": what, "message": "must match [A-Za-z0-9._-]{1,64}"}],
        )
    return value


def require_category(value: str) -> str:
    if not isinstance(value, str) or not CATEGORY_PATTERN.fullmatch(value):
        raise InvalidInput(
            "category must be a lowercase slug such as 'home-kitchen'.",
            [{"field": "category", "message": "must match [a-z0-9][a-z0-9-]{0,47}"}],
        )
    return value


@dataclass(frozen=True, slots=True)
class LocalizedText:
    """The same text in each supported language; a language may be missing (empty)."""

    zh_cn: str = ""
    en: str = ""

    @classmethod
    def from_mapping(cls, texts: Mapping[str, str | None]) -> LocalizedText:
        unknown = set(texts) - set(LOCALES)
        if unknown:
            raise InvalidInput(f"Unsupported languages: {', '.join(sorted(unknown))}.")
        return cls(zh_cn=(texts.get(ZH_CN) or "").strip(), en=(texts.get(EN) or "").strip())

    def as_dict(self) -> dict[str, str]:
        """Only the languages that have text, keyed by locale ("zh-CN", "en")."""
        pairs = ((ZH_CN, self.zh_cn), (EN, self.en))
        return {locale: text for locale, text in pairs if text}

    def texts(self) -> tuple[str, ...]:
        return tuple(text for text in (self.zh_cn, self.en) if text)

    def is_empty(self) -> bool:
        return not self.zh_cn and not self.en

    def in_locale(self, locale: str) -> str:
        """The text in ``locale``, falling back to the other language when it is missing."""
        preferred, other = (self.zh_cn, self.en) if locale == ZH_CN else (self.en, self.zh_cn)
        return preferred or other


@dataclass(frozen=True, slots=True)
class Location:
    """A point on the earth in decimal degrees (WGS 84)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        for name, value, limit in (("lat", self.lat, 90.0), ("lon", self.lon, 180.0)):
            valid_number = isinstance(value, int | float) and not isinstance(value, bool)
            if not valid_number or not math.isfinite(value) or abs(value) > limit:
                raise InvalidInput(
                    f"location.{name} must be a number between -{limit:g} and {limit:g}.",
                    [{"field": f"location.{name}", "message": "out of range"}],
                )

    @classmethod
    def rounded(cls, lat: float, lon: float) -> Location:
        """A location with coordinates rounded to ``COORDINATE_DECIMALS`` (and no -0.0)."""
        return cls(
            lat=round(lat, COORDINATE_DECIMALS) + 0.0, lon=round(lon, COORDINATE_DECIMALS) + 0.0
        )

    def distance_km(self, other: Location) -> float:
        """Great-circle distance (haversine), good to well under 1% for ranking warehouses."""
        lat1, lon1, lat2, lon2 = map(math.radians, (self.lat, self.lon, other.lat, other.lon))
        half_dlat = (lat2 - lat1) / 2
        half_dlon = (lon2 - lon1) / 2
        a = math.sin(half_dlat) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(half_dlon) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class PostalAddress:
    """Where a carrier collects a warehouse's parcels (a Chinese address: 省, 市, street)."""

    region: str
    city: str
    line1: str
    postcode: str

    def __post_init__(self) -> None:
        for field_name in ("region", "city", "line1", "postcode"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(
                    f"address.{field_name} is required.",
                    [{"field": f"address.{field_name}", "message": "required"}],
                )

    def printed(self) -> str:
        """The one-line address a waybill prints: region, city, street."""
        return "".join(part for part in (self.region, self.city, self.line1) if part)


# What a carrier needs from a warehouse to collect its parcels, in the order ops hear it.
SENDER_FIELDS = ("address", "contact_name", "phone")


@dataclass(frozen=True, slots=True)
class WarehouseDetails:
    """What operations staff set on a warehouse. The sender fields (address, contact name,
    phone) are optional here, but a warehouse without them cannot book a parcel."""

    name: str
    city: str
    location: Location
    address: PostalAddress | None = None
    contact_name: str = ""
    phone: str = ""

    def __post_init__(self) -> None:
        for field_name in ("name", "city"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(
                    f"{field_name} is required.", [{"field": field_name, "message": "required"}]
                )


@dataclass(frozen=True, slots=True)
class Warehouse:
    id: str
    name: str
    city: str
    location: Location
    created_at: datetime
    updated_at: datetime
    version: int = 1
    address: PostalAddress | None = None
    contact_name: str = ""
    phone: str = ""

    def __post_init__(self) -> None:
        require_id(self.id, "id")

    @classmethod
    def create(cls, warehouse_id: str, details: WarehouseDetails, now: datetime) -> Warehouse:
        return cls(
            id=warehouse_id,
            name=details.name,
            city=details.city,
            location=details.location,
            created_at=now,
            updated_at=now,
            address=details.address,
            contact_name=details.contact_name,
            phone=details.phone,
        )

    def details(self) -> WarehouseDetails:
        return WarehouseDetails(
            name=self.name,
            city=self.city,
            location=self.location,
            address=self.address,
            contact_name=self.contact_name,
            phone=self.phone,
        )

    def replaced_by(self, details: WarehouseDetails, now: datetime) -> Warehouse:
        return replace(
            self,
            name=details.name,
            city=details.city,
            location=details.location,
            address=details.address,
            contact_name=details.contact_name,
            phone=details.phone,
            updated_at=now,
            version=self.version + 1,
        )

    def missing_for_booking(self) -> list[str]:
        """The sender fields a carrier needs that this warehouse lacks (none: it can book)."""
        present = {
            "address": self.address is not None,
            "contact_name": bool(self.contact_name.strip()),
            "phone": bool(self.phone.strip()),
        }
        return [name for name in SENDER_FIELDS if not present[name]]

    def distance_km(self, destination: Location) -> float:
        return self.location.distance_km(destination)


def nearest_first(warehouses: Iterable[Warehouse], destination: Location) -> list[Warehouse]:
    """Warehouses ordered by distance to ``destination``; equal distances by id, for stability."""
    return sorted(warehouses, key=lambda w: (w.distance_km(destination), w.id))


@dataclass(frozen=True, slots=True)
class ProductDetails:
    """What operations staff set on a product with ``PUT /products/{sku}``."""

    name: LocalizedText
    category: str
    price: Money
    description: LocalizedText = LocalizedText()
    images: tuple[str, ...] = ()
    active: bool = True
    # Ops only (never shown to shoppers): thresholds and restocking.
    reorder: ReorderPolicy = field(default_factory=ReorderPolicy)

    def __post_init__(self) -> None:
        if self.name.is_empty():
            raise InvalidInput(
                "A product needs a name in at least one language (zh-CN or en).",
                [{"field": "name", "message": "needs zh-CN or en"}],
            )
        require_category(self.category)
        if self.price.is_negative():
            raise InvalidInput(
                "price.amount must not be negative.",
                [{"field": "price.amount", "message": "must be >= 0"}],
            )


_DETAIL_FIELDS = tuple(f.name for f in fields(ProductDetails))


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: LocalizedText
    category: str
    price: Money
    description: LocalizedText
    images: tuple[str, ...]
    active: bool
    created_at: datetime
    updated_at: datetime
    # Bumped on every replacement; the store writes conditionally on it.
    version: int = 1
    reorder: ReorderPolicy = field(default_factory=ReorderPolicy)

    def __post_init__(self) -> None:
        require_id(self.sku, "sku")

    @classmethod
    def create(cls, sku: str, details: ProductDetails, now: datetime) -> Product:
        values = {name: getattr(details, name) for name in _DETAIL_FIELDS}
        return cls(sku=sku, created_at=now, updated_at=now, **values)

    def details(self) -> ProductDetails:
        return ProductDetails(**{name: getattr(self, name) for name in _DETAIL_FIELDS})

    def replaced_by(self, details: ProductDetails, now: datetime) -> Product:
        values = {name: getattr(details, name) for name in _DETAIL_FIELDS}
        return replace(self, updated_at=now, version=self.version + 1, **values)

    @property
    def unit_cost(self) -> Money | None:
        """What one unit costs us (ops only; None when not set)."""
        return self.reorder.unit_cost

    def is_visible_to(self, *, staff: bool) -> bool:
        """Inactive products exist only for staff; shoppers never see them."""
        return self.active or staff

    def search_document(self) -> search.SearchDocument:
        return search.SearchDocument.of(
            names=self.name.texts(), descriptions=self.description.texts()
        )
