"""Demo data for the local stack: warehouses in five cities, a bilingual catalogue, users.

``seed()`` writes through the same service functions the API calls, so the data obeys
every rule the API enforces, and running it again changes nothing. It needs the app's
environment (TABLE_NAME, AWS_ENDPOINT_URL, ...) already set:

    python -m infra.local.demo_data

Stock per warehouse is listed with each product (``DemoProduct.stock``) for the stock
service to receive; ``demo_stock()`` gives it as (sku, warehouse, quantity) rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain.catalogue import (
    LocalizedText,
    Location,
    PostalAddress,
    ProductDetails,
    WarehouseDetails,
)
from chalicelib.domain.money import Money
from chalicelib.domain.replenishment import ReorderPolicy
from chalicelib.observability import logger
from chalicelib.services import catalogue, stock

CURRENCY = "CNY"
# Ops hear about a (SKU, warehouse) left with this many units or fewer.
DEMO_LOW_STOCK_THRESHOLD = 5


@dataclass(frozen=True)
class DemoWarehouse:
    id: str
    name: str
    city: str
    lat: float
    lon: float
    # The sender a carrier collects from: (region, city, street, postcode), contact, phone.
    address: tuple[str, str, str, str]
    contact_name: str
    phone: str


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    category: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    price_fen: int
    # Units on hand per warehouse id; warehouses not listed hold none.
    stock: dict[str, int] = field(default_factory=dict)
    active: bool = True


@dataclass(frozen=True)
class DemoUser:
    id: str
    groups: tuple[str, ...]
    email: str
    name: str
    phone: str | None = None
    locale: str = "zh-CN"


# City-centre coordinates. Spread north, east, south, west and centre so that the nearest
# warehouse differs by destination and orders can split.
WAREHOUSES = (
    DemoWarehouse(
        "wh-sha",
        "华东中心仓 East China DC",
        "上海 Shanghai",
        31.2304,
        121.4737,
        ("上海市", "上海市", "浦东新区张江路 88 号", "201203"),
        "王磊",
        "13800138001",
    ),
    DemoWarehouse(
        "wh-pek",
        "华北中心仓 North China DC",
        "北京 Beijing",
        39.9042,
        116.4074,
        ("北京市", "北京市", "大兴区京开路 16 号", "102600"),
        "李静",
        "13800138002",
    ),
    DemoWarehouse(
        "wh-can",
        "华南中心仓 South China DC",
        "广州 Guangzhou",
        23.1291,
        113.2644,
        ("广东省", "广州市", "白云区机场路 1208 号", "510405"),
        "陈晓",
        "13800138003",
    ),
    DemoWarehouse(
        "wh-ctu",
        "西南中心仓 Southwest DC",
        "成都 Chengdu",
        30.5728,
        104.0668,
        ("四川省", "成都市", "双流区物联大道 66 号", "610200"),
        "刘洋",
        "13800138004",
    ),
    DemoWarehouse(
        "wh-wuh",
        "华中中心仓 Central China DC",
        "武汉 Wuhan",
        30.5928,
        114.3055,
        ("湖北省", "武汉市", "东西湖区走马岭路 9 号", "430040"),
        "张敏",
        "13800138005",
    ),
)


def _stock(sha: int = 0, pek: int = 0, can: int = 0, ctu: int = 0, wuh: int = 0) -> dict[str, int]:
    quantities = {"wh-sha": sha, "wh-pek": pek, "wh-can": can, "wh-ctu": ctu, "wh-wuh": wuh}
    return {warehouse: units for warehouse, units in quantities.items() if units}


PRODUCTS = (
    # --- electronics ---
    DemoProduct(
        "EL-EARBUDS-PRO",
        "electronics",
        "无线蓝牙耳机 Pro",
        "Wireless Bluetooth Earbuds Pro",
        "主动降噪，单次续航8小时，配无线充电盒。",
        "Active noise cancelling, 8 hours per charge, wireless charging case.",
        69900,
        _stock(sha=120, pek=80, can=60, ctu=20, wuh=40),
    ),
    DemoProduct(
        "EL-SPEAKER-MINI",
        "electronics",
        "便携蓝牙音箱",
        "Portable Bluetooth Speaker",
        "防水设计，低音浑厚，适合户外露营。",
        "Waterproof with deep bass, made for camping trips.",
        29900,
        _stock(sha=40, pek=30, can=25, wuh=10),
    ),
    DemoProduct(
        "EL-POWERBANK-20K",
        "electronics",
        "20000毫安充电宝",
        "20,000 mAh Power Bank",
        "双向快充，可为笔记本电脑充电。",
        "Two-way fast charging, powerful enough for a laptop.",
        19900,
        _stock(sha=200, pek=150, can=150, ctu=80, wuh=100),
    ),
    DemoProduct(
        "EL-KEYBOARD-MECH",
        "electronics",
        "机械键盘 青轴",
        "Mechanical Keyboard (Blue Switches)",
        "87键紧凑布局，白色背光。",
        "Compact 87-key layout with white backlight.",
        34900,
        _stock(sha=15, can=5),
    ),
    DemoProduct(
        "EL-MOUSE-WL",
        "electronics",
        "无线静音鼠标",
        "Silent Wireless Mouse",
        "静音按键，一节电池用一年。",
        "Quiet clicks, a year on one battery.",
        9900,
        _stock(sha=90, pek=60, can=40, ctu=30, wuh=30),
    ),
    DemoProduct(
        "EL-SMARTWATCH",
        "electronics",
        "智能手表 运动版",
        "Smart Watch Sport Edition",
        "心率与血氧监测，支持五十米防水。",
        "Heart-rate and SpO2 tracking, water resistant to 50 metres.",
        129900,
        _stock(pek=3, ctu=2),
    ),
    DemoProduct(
        "EL-USB-C-CABLE",
        "electronics",
        "USB-C 数据线 2米",
        "USB-C Cable 2 m",
        "编织线身，支持100W快充。",
        "Braided, supports 100 W fast charging.",
        3900,
        _stock(sha=500, pek=400, can=300, ctu=200, wuh=200),
    ),
    DemoProduct(
        "EL-EARBUDS-LITE",
        "electronics",
        "蓝牙耳机 青春版",
        "Bluetooth Earbuds Lite",
        "轻巧入耳，续航5小时。",
        "Light in-ear fit with 5 hours of battery.",
        19900,
        _stock(can=30, wuh=12),
        active=False,  # discontinued: only staff see it
    ),
    # --- home ---
    DemoProduct(
        "HM-KETTLE-17",
        "home",
        "电热水壶 1.7升",
        "Electric Kettle 1.7 L",
        "不锈钢内胆，三分钟烧开一壶水。",
        "Stainless steel, boils a full kettle in three minutes.",
        15900,
        _stock(sha=30, pek=30, can=20, ctu=10, wuh=15),
    ),
    DemoProduct(
        "HM-RICE-COOKER",
        "home",
        "智能电饭煲 4升",
        "Smart Rice Cooker 4 L",
        "预约定时，柴火饭口感。",
        "Delay timer and a wood-fire style cooking programme.",
        39900,
        _stock(sha=12, can=18, ctu=6),
    ),
    DemoProduct(
        "HM-PILLOW-LATEX",
        "home",
        "天然乳胶枕",
        "Natural Latex Pillow",
        "泰国进口乳胶，护颈设计。",
        "Imported Thai latex with neck support.",
        19900,
        _stock(sha=50, pek=20, can=40),
    ),
    DemoProduct(
        "HM-TOWEL-SET",
        "home",
        "纯棉毛巾三件套",
        "Cotton Towel Set (3 pieces)",
        "长绒棉，柔软吸水。",
        "Long-staple cotton, soft and absorbent.",
        8900,
        _stock(sha=100, pek=80, can=80, ctu=60, wuh=60),
    ),
    DemoProduct(
        "HM-DESK-LAMP",
        "home",
        "护眼台灯",
        "Eye-Care Desk Lamp",
        "无频闪，三档色温可调。",
        "Flicker-free, with three colour temperatures.",
        12900,
        _stock(pek=25, wuh=25),
    ),
    DemoProduct(
        "HM-VACUUM-ROBOT",
        "home",
        "扫地机器人",
        "Robot Vacuum Cleaner",
        "激光导航，自动回充。",
        "Laser navigation and automatic docking.",
        149900,
        _stock(sha=4, pek=2),
    ),
    # --- apparel ---
    DemoProduct(
        "AP-TEE-COTTON",
        "apparel",
        "纯棉圆领T恤",
        "Cotton Crew-Neck T-Shirt",
        "新疆长绒棉，透气舒适。",
        "Xinjiang long-staple cotton, breathable and comfortable.",
        7900,
        _stock(sha=300, pek=200, can=250, ctu=150, wuh=150),
    ),
    DemoProduct(
        "AP-DOWN-JACKET",
        "apparel",
        "轻薄羽绒服",
        "Lightweight Down Jacket",
        "九成白鸭绒，可收纳进口袋。",
        "90% white duck down, packs into its own pocket.",
        49900,
        _stock(pek=60, sha=20, wuh=15),
    ),
    DemoProduct(
        "AP-RUNNING-SHOES",
        "apparel",
        "缓震跑步鞋",
        "Cushioned Running Shoes",
        "回弹中底，适合长距离跑步。",
        "Responsive midsole for long runs.",
        59900,
        _stock(sha=35, can=35, ctu=10),
    ),
    DemoProduct(
        "AP-SILK-SCARF",
        "apparel",
        "桑蚕丝围巾",
        "Mulberry Silk Scarf",
        "杭州真丝，手工卷边。",
        "Hangzhou silk with hand-rolled edges.",
        29900,
        _stock(sha=25),
    ),
    DemoProduct(
        "AP-RAIN-JACKET",
        "apparel",
        "防水冲锋衣",
        "Waterproof Hiking Jacket",
        "三层压胶，防风防雨。",
        "Three-layer sealed seams, wind and rain proof.",
        39900,
        _stock(ctu=40, pek=10, can=5),
    ),
    DemoProduct(
        "AP-WOOL-SOCKS",
        "apparel",
        "美利奴羊毛袜 三双装",
        "Merino Wool Socks (3 pairs)",
        "保暖抑菌，四季可穿。",
        "Warm and odour resistant, for every season.",
        9900,
        _stock(sha=80, pek=80, can=40, ctu=40, wuh=40),
    ),
    # --- food ---
    DemoProduct(
        "FD-LONGJING-TEA",
        "food",
        "西湖龙井茶 250克",
        "West Lake Longjing Tea 250 g",
        "明前头采，清香回甘。",
        "First spring picking, fresh and sweet.",
        36800,
        _stock(sha=60, pek=20, wuh=10),
    ),
    DemoProduct(
        "FD-SICHUAN-PEPPER",
        "food",
        "汉源花椒 100克",
        "Hanyuan Sichuan Pepper 100 g",
        "麻味十足，川菜必备。",
        "Powerfully numbing, a Sichuan kitchen essential.",
        2900,
        _stock(ctu=300, wuh=50, sha=50),
    ),
    DemoProduct(
        "FD-MOONCAKE-BOX",
        "food",
        "广式月饼礼盒",
        "Cantonese Mooncake Gift Box",
        "莲蓉蛋黄等六种口味。",
        "Six flavours including lotus seed paste with salted egg yolk.",
        19800,
        _stock(can=120, sha=40, pek=40),
    ),
    DemoProduct(
        "FD-HOT-DRY-NOODLE",
        "food",
        "武汉热干面 五人份",
        "Wuhan Hot Dry Noodles (5 servings)",
        "芝麻酱香浓，五分钟即食。",
        "Rich sesame paste, ready in five minutes.",
        3990,
        _stock(wuh=400, sha=60, pek=60, can=60, ctu=60),
    ),
    DemoProduct(
        "FD-COFFEE-BEANS",
        "food",
        "云南小粒咖啡豆 500克",
        "Yunnan Arabica Coffee Beans 500 g",
        "中度烘焙，坚果与焦糖风味。",
        "Medium roast with nutty, caramel notes.",
        8800,
        _stock(ctu=70, sha=50, pek=30),
    ),
    DemoProduct(
        "FD-DRIED-MANGO",
        "food",
        "芒果干 500克",
        "Dried Mango 500 g",
        "无添加蔗糖，果肉厚实。",
        "No added sugar, thick slices.",
        4500,
        _stock(can=150, sha=50),
    ),
    # --- beauty ---
    DemoProduct(
        "BT-SUNSCREEN-50",
        "beauty",
        "清爽防晒霜 SPF50",
        "Light Sunscreen SPF 50",
        "轻薄不油腻，防水防汗。",
        "Light and non-greasy, water and sweat resistant.",
        12900,
        _stock(sha=100, can=100, pek=50, ctu=30, wuh=30),
    ),
    DemoProduct(
        "BT-FACE-MASK-10",
        "beauty",
        "补水面膜 十片装",
        "Hydrating Sheet Masks (10 pack)",
        "玻尿酸精华，深层补水。",
        "Hyaluronic acid essence for deep hydration.",
        9900,
        _stock(sha=200, pek=100, can=100),
    ),
    DemoProduct(
        "BT-LIP-BALM",
        "beauty",
        "润唇膏",
        "Moisturising Lip Balm",
        "天然蜂蜡，秋冬必备。",
        "Natural beeswax for dry winter lips.",
        3500,
        _stock(pek=150, sha=100, wuh=50),
    ),
    DemoProduct(
        "BT-HAND-CREAM",
        "beauty",
        "护手霜礼盒",
        "Hand Cream Gift Set",
        "三种香型，滋润不黏腻。",
        "Three scents, rich but never sticky.",
        6800,
        _stock(sha=40, can=40),
    ),
    DemoProduct(
        "BT-SHAMPOO-ANTI",
        "beauty",
        "去屑洗发水 750毫升",
        "Anti-Dandruff Shampoo 750 ml",
        "薄荷清凉，控油去屑。",
        "Cooling mint, controls oil and dandruff.",
        5900,
        _stock(sha=80, pek=80, can=80, ctu=80, wuh=80),
    ),
    # --- sports ---
    DemoProduct(
        "SP-YOGA-MAT",
        "sports",
        "加厚瑜伽垫",
        "Thick Yoga Mat",
        "十毫米厚，防滑耐用。",
        "10 mm thick, non-slip and durable.",
        12900,
        _stock(sha=45, pek=30, ctu=15),
    ),
    DemoProduct(
        "SP-BADMINTON-SET",
        "sports",
        "羽毛球拍套装",
        "Badminton Racket Set",
        "碳素球拍两支，附赠羽毛球。",
        "Two carbon rackets with shuttlecocks included.",
        25900,
        _stock(can=30, wuh=20),
    ),
    DemoProduct(
        "SP-WATER-BOTTLE",
        "sports",
        "保温运动水壶 750毫升",
        "Insulated Sports Bottle 750 ml",
        "双层真空，保冷二十四小时。",
        "Double-walled vacuum, keeps drinks cold for 24 hours.",
        8900,
        _stock(sha=120, pek=90, can=90, ctu=60, wuh=60),
    ),
    DemoProduct(
        "SP-DUMBBELLS-10",
        "sports",
        "可调哑铃 10公斤",
        "Adjustable Dumbbells 10 kg",
        "快速调节重量，节省空间。",
        "Quick weight changes in a small footprint.",
        29900,
        _stock(pek=8),
    ),
    DemoProduct(
        "SP-CAMPING-TENT",
        "sports",
        "双人露营帐篷",
        "Two-Person Camping Tent",
        "一分钟速开，防雨防晒。",
        "Pitches in a minute, rain and UV proof.",
        45900,
        _stock(ctu=12, sha=6, pek=6),
    ),
)

DEMO_USERS = (
    DemoUser("cust-li-wei", ("customers",), "li.wei@example.com", "李伟", "+8613800000001"),
    DemoUser("cust-wang-fang", ("customers",), "wang.fang@example.com", "王芳", "+8613800000002"),
    DemoUser("cust-alice-chen", ("customers",), "alice.chen@example.com", "Alice Chen", None, "en"),
    DemoUser("ops-zhang-min", ("ops",), "zhang.min@example.com", "张敏"),
    DemoUser("support-liu-yang", ("support",), "liu.yang@example.com", "刘洋"),
    DemoUser("finance-chen-jing", ("finance",), "chen.jing@example.com", "陈静"),
)


def product_details(product: DemoProduct) -> ProductDetails:
    return ProductDetails(
        name=LocalizedText(zh_cn=product.name_zh, en=product.name_en),
        description=LocalizedText(zh_cn=product.description_zh, en=product.description_en),
        category=product.category,
        price=Money(product.price_fen, CURRENCY),
        active=product.active,
        # Bought in at about 60 % of the price, a week to restock, a month of cover wanted.
        reorder=ReorderPolicy(
            default_low_stock_threshold=DEMO_LOW_STOCK_THRESHOLD,
            unit_cost=Money(product.price_fen * 6 // 10, CURRENCY),
            lead_time_days=7,
            target_days_of_cover=30,
        ),
    )


def warehouse_details(warehouse: DemoWarehouse) -> WarehouseDetails:
    return WarehouseDetails(
        name=warehouse.name,
        city=warehouse.city,
        location=Location.rounded(warehouse.lat, warehouse.lon),
        address=PostalAddress(*warehouse.address),
        contact_name=warehouse.contact_name,
        phone=warehouse.phone,
    )


def demo_stock() -> list[tuple[str, str, int]]:
    """(sku, warehouse id, units on hand) for every stocked pair."""
    return [
        (product.sku, warehouse, units)
        for product in PRODUCTS
        for warehouse, units in product.stock.items()
    ]


def seed() -> None:
    """Write the demo warehouses and products; running it again writes nothing new."""
    created = 0
    for warehouse in WAREHOUSES:
        created += catalogue.put_warehouse(warehouse.id, warehouse_details(warehouse)).created
    for product in PRODUCTS:
        created += catalogue.put_product(product.sku, product_details(product)).created
    # Only levels that do not exist yet: a second run leaves stock that has moved alone.
    stocked = stock.stock_if_new(demo_stock(), actor="demo-data", note="demo data")
    logger.info(
        "demo data seeded",
        extra={
            "warehouses": len(WAREHOUSES),
            "products": len(PRODUCTS),
            "newly_created": created,
            "levels_stocked": len(stocked),
        },
    )


if __name__ == "__main__":
    seed()
