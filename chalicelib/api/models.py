"""Request and response models: they validate what comes in, shape what goes out, and are
the very models ``GET /openapi.json`` describes.

Requests forbid unknown fields and do not coerce types ("12900" is not an amount), so a
mistake is a 400 naming the field. Every model defers building its validator until first
use, so importing the app stays cheap for Lambda cold starts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from typing_extensions import TypedDict

from chalicelib.domain.catalogue import (
    LocalizedText,
    Location,
    PostalAddress,
    Product,
    ProductDetails,
    Warehouse,
    WarehouseDetails,
)
from chalicelib.domain.money import Money
from chalicelib.domain.replenishment import (
    MAX_LEAD_TIME_DAYS,
    MAX_LOW_STOCK_THRESHOLD,
    MAX_TARGET_DAYS_OF_COVER,
    ReorderPolicy,
)
from chalicelib.domain.reviews import Rating

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
CATEGORY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,47}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
# ¥10,000,000.00: far above any real price, far below where integer maths could surprise.
MAX_PRICE_MINOR_UNITS = 1_000_000_000
MAX_IMAGES = 10


def _integral_number(value: Any) -> Any:
    # JSON does not tell 12900 from 12900.0, and JSON Schema calls both an integer; any
    # other float (or a string, or a boolean) is still refused by the strict int check.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema means it: 12900 and 12900.0 are accepted, 129.5 and "12900" not.
JsonInt = Annotated[int, BeforeValidator(_integral_number)]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class QueryModel(BaseModel):
    """Query strings are text, so numbers are parsed; unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(defer_build=True)


# --- shared -----------------------------------------------------------------------------


class ErrorBody(ResponseModel):
    """Every error response, whatever the status."""

    error: str = Field(description="Stable machine-readable code, e.g. validation_error.")
    message: str = Field(description="What went wrong, for a person.")
    details: Any = Field(
        default=None, description="Optional specifics, e.g. the fields that failed validation."
    )


class PhotoLink(ResponseModel):
    """A short-lived GET URL of one uploaded photo (for staff)."""

    upload_id: str
    url: str
    expires_at: str


class MoneyBody(ResponseModel):
    amount: int = Field(description="Integer amount in the currency's minor unit (fen, cents).")
    currency: str = Field(pattern=CURRENCY_PATTERN, examples=["CNY"])

    @classmethod
    def of(cls, money: Money) -> MoneyBody:
        return cls(amount=money.amount, currency=money.currency)


# --- products ---------------------------------------------------------------------------

# Text must hold something besides spaces; surrounding spaces are trimmed when stored. The
# limits are checked on the text as sent, exactly as the published schema says.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
Description = Annotated[str, StringConstraints(max_length=2000)]
Category = Annotated[str, StringConstraints(pattern=CATEGORY_PATTERN)]
ImageUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=1000)]

LocalizedTextBody = TypedDict("LocalizedTextBody", {"zh-CN": str, "en": str}, total=False)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# A language a product does not have is left out (null is not accepted): that way the
# schema can say exactly what is accepted ("at least one language" is minProperties 1).
def _optional_language(alias: str | None = None) -> Any:
    return Field(default=None, alias=alias, json_schema_extra=_no_default)


class LocalizedName(RequestModel):
    """A name in Chinese (zh-CN), English (en) or both; at least one is required."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    zh_cn: Name = _optional_language("zh-CN")
    en: Name = _optional_language()

    @model_validator(mode="after")
    def _at_least_one_language(self) -> LocalizedName:
        if self.zh_cn is None and self.en is None:
            raise ValueError("a name needs zh-CN or en (or both)")
        return self

    def to_domain(self) -> LocalizedText:
        return LocalizedText.from_mapping({"zh-CN": self.zh_cn, "en": self.en})


class LocalizedDescription(RequestModel):
    zh_cn: Description = _optional_language("zh-CN")
    en: Description = _optional_language()

    def to_domain(self) -> LocalizedText:
        return LocalizedText.from_mapping({"zh-CN": self.zh_cn, "en": self.en})


class Price(RequestModel):
    amount: JsonInt = Field(
        ge=0,
        le=MAX_PRICE_MINOR_UNITS,
        description="Integer amount in the currency's minor unit (fen): 12900 is ¥129.00.",
    )
    currency: str = Field(pattern=CURRENCY_PATTERN, examples=["CNY"])

    def to_domain(self) -> Money:
        return Money(self.amount, self.currency)


Threshold = Annotated[JsonInt, Field(ge=0, le=MAX_LOW_STOCK_THRESHOLD)]
LeadTimeDays = Annotated[JsonInt, Field(ge=0, le=MAX_LEAD_TIME_DAYS)]
DaysOfCover = Annotated[JsonInt, Field(ge=1, le=MAX_TARGET_DAYS_OF_COVER)]


class ProductPut(RequestModel):
    """The body of PUT /products/{sku}: the whole product (a replacement, not a patch)."""

    name: LocalizedName
    description: LocalizedDescription = Field(default_factory=LocalizedDescription)
    category: Category = Field(description="A lowercase slug such as electronics or home-kitchen.")
    price: Price
    images: list[ImageUrl] = Field(default_factory=list, max_length=MAX_IMAGES)
    active: bool = Field(default=True, description="Inactive products are visible to staff only.")
    # Ops only: never shown to shoppers. Left out (or null) means not set.
    default_low_stock_threshold: Threshold | None = Field(
        default=None,
        description="The low-stock threshold of every stock level of this product that has "
        "none of its own (0 when not set).",
    )
    unit_cost: Price | None = Field(default=None, description="What one unit costs us.")
    lead_time_days: LeadTimeDays | None = Field(
        default=None, description="Days from ordering stock to receiving it."
    )
    target_days_of_cover: DaysOfCover | None = Field(
        default=None, description="Days of sales a delivery should cover."
    )

    def to_domain(self) -> ProductDetails:
        return ProductDetails(
            name=self.name.to_domain(),
            description=self.description.to_domain(),
            category=self.category,
            price=self.price.to_domain(),
            images=tuple(self.images),
            active=self.active,
            reorder=ReorderPolicy(
                default_low_stock_threshold=self.default_low_stock_threshold,
                unit_cost=self.unit_cost.to_domain() if self.unit_cost else None,
                lead_time_days=self.lead_time_days,
                target_days_of_cover=self.target_days_of_cover,
            ),
        )


class RatingBody(ResponseModel):
    """A product's rating from its published reviews."""

    average: float | None = Field(description="Rounded to one decimal; null with no reviews.")
    count: int = Field(ge=0)
    histogram: dict[Literal["1", "2", "3", "4", "5"], int] = Field(
        description="How many published reviews gave each number of stars."
    )

    @classmethod
    def of(cls, rating: Rating) -> RatingBody:
        return cls.model_validate(rating.as_dict())


class ProductBody(ResponseModel):
    sku: str = Field(pattern=ID_PATTERN)
    name: LocalizedTextBody = Field(description="Only the languages the product has.")
    description: LocalizedTextBody
    category: str
    price: MoneyBody
    images: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime
    rating: RatingBody

    @classmethod
    def of(cls, product: Product, rating: Rating | None = None) -> ProductBody:
        return cls(
            sku=product.sku,
            name=product.name.as_dict(),  # type: ignore[arg-type]
            description=product.description.as_dict(),  # type: ignore[arg-type]
            category=product.category,
            price=MoneyBody.of(product.price),
            images=list(product.images),
            active=product.active,
            created_at=product.created_at,
            updated_at=product.updated_at,
            rating=RatingBody.of(rating or Rating()),
        )


class ReorderFieldsBody(ResponseModel):
    """The ops-only fields of a product (present for ops, never for anyone else)."""

    default_low_stock_threshold: int | None = None
    unit_cost: MoneyBody | None = None
    lead_time_days: int | None = None
    target_days_of_cover: int | None = None

    @staticmethod
    def values(product: Product) -> dict[str, Any]:
        policy = product.reorder
        return {
            "default_low_stock_threshold": policy.default_low_stock_threshold,
            "unit_cost": MoneyBody.of(policy.unit_cost) if policy.unit_cost else None,
            "lead_time_days": policy.lead_time_days,
            "target_days_of_cover": policy.target_days_of_cover,
        }


class DeliveryEstimateBody(ResponseModel):
    earliest: date
    latest: date


class AvailabilityBody(ResponseModel):
    in_stock: bool
    available: int = Field(ge=0, description="Units available across all warehouses.")
    nearest_city: str | None = Field(
        default=None, description="With lat/lon: the city of the nearest warehouse with stock."
    )
    delivery_estimate: DeliveryEstimateBody | None = None


class ProductDetailBody(ProductBody):
    availability: AvailabilityBody


class OpsProductDetailBody(ProductDetailBody, ReorderFieldsBody):
    """A product page as ops see it: also the ops-only fields."""


class ProductDetailQuery(QueryModel):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_or_neither(self) -> ProductDetailQuery:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        return self


class ProductPage(ResponseModel):
    items: list[ProductBody]
    next_cursor: str | None = Field(
        description="Pass as cursor to get the next page; null on the last page."
    )


class ProductListQuery(QueryModel):
    q: str | None = Field(
        default=None,
        max_length=200,
        description="Words to find in names and descriptions (Chinese needs no spaces).",
    )
    category: Category | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


# --- warehouses -------------------------------------------------------------------------

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")]


class LocationBody(RequestModel):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, examples=[31.23])
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, examples=[121.47])

    def to_domain(self) -> Location:
        return Location.rounded(self.lat, self.lon)

    @classmethod
    def of(cls, location: Location) -> LocationBody:
        return cls(lat=location.lat, lon=location.lon)


class PostalAddressBody(RequestModel):
    region: ShortText = Field(examples=["上海市"])
    city: ShortText = Field(examples=["上海市"])
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")] = Field(
        examples=["浦东新区张江路 88 号"]
    )
    postcode: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 -]{3,12}$")] = Field(
        examples=["201203"]
    )

    def to_domain(self) -> PostalAddress:
        return PostalAddress(
            region=self.region.strip(),
            city=self.city.strip(),
            line1=self.line1.strip(),
            postcode=self.postcode.strip(),
        )

    @classmethod
    def of(cls, address: PostalAddress) -> PostalAddressBody:
        return cls(
            region=address.region, city=address.city, line1=address.line1, postcode=address.postcode
        )


PhoneText = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{4,19}$")]


class WarehousePut(RequestModel):
    name: ShortText
    city: ShortText
    location: LocationBody
    # What a carrier needs to collect parcels: optional, but without them nothing can ship.
    address: PostalAddressBody | None = None
    contact_name: ShortText | None = None
    phone: PhoneText | None = None

    def to_domain(self) -> WarehouseDetails:
        return WarehouseDetails(
            name=self.name.strip(),
            city=self.city.strip(),
            location=self.location.to_domain(),
            address=self.address.to_domain() if self.address else None,
            contact_name=(self.contact_name or "").strip(),
            phone=(self.phone or "").strip(),
        )


class WarehouseBody(ResponseModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str
    city: str
    location: LocationBody
    address: PostalAddressBody | None
    contact_name: str | None
    phone: str | None
    can_book: bool = Field(description="Whether it has what a carrier needs to collect parcels.")
    missing_for_booking: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, warehouse: Warehouse) -> WarehouseBody:
        missing = warehouse.missing_for_booking()
        return cls(
            id=warehouse.id,
            name=warehouse.name,
            city=warehouse.city,
            location=LocationBody.of(warehouse.location),
            address=PostalAddressBody.of(warehouse.address) if warehouse.address else None,
            contact_name=warehouse.contact_name or None,
            phone=warehouse.phone or None,
            can_book=not missing,
            missing_for_booking=missing,
            created_at=warehouse.created_at,
            updated_at=warehouse.updated_at,
        )


class WarehouseList(ResponseModel):
    items: list[WarehouseBody]


def dump(model: BaseModel) -> dict[str, Any]:
    """A response model as the JSON-ready dict a view returns."""
    return model.model_dump(mode="json", by_alias=True)
