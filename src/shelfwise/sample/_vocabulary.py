"""Building blocks of the sample shop's bilingual vocabulary: terms, brands, colors.

The category table itself lives in `_categories.py`; this module holds the record
types and the tables shared by all categories (colors, departments, sizes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One word or phrase in Chinese and English (English lower-case unless a name)."""

    zh: str
    en: str


@dataclass(frozen=True)
class Brand:
    """A brand as it appears in one category.

    Attributes:
        en: Latin name, also the brand's identity across categories ("Apple").
        zh: Chinese name, if the brand has one ("苹果").
        lines: Product lines or models used in titles ("ThinkPad", "小新").
        tier: Log-price premium over the category median (0.4 is about +50%).
    """

    en: str
    zh: str | None = None
    lines: tuple[str, ...] = ()
    tier: float = 0.0


@dataclass(frozen=True)
class Department:
    """A group of categories with shared title adjectives and selling points."""

    key: str
    name: Term
    adjectives: tuple[Term, ...]
    selling_points: tuple[Term, ...]


@dataclass(frozen=True)
class Category:
    """One leaf category: its names, brands, attributes and price range.

    Attributes:
        key: Stable identifier ("laptop").
        zh_terms: Chinese names; the first is canonical, all are used in queries.
        en_terms: English names (lower-case); the first is canonical.
        label_en: English label of the `category` column ("Laptops").
        department: Key of the department.
        brands: Brands sold in the category, most common first.
        price_median: Median price in yuan.
        price_sigma: Spread of the lognormal price.
        share: Relative share of the catalog.
        colors: Color keys offered (see `COLORS`); empty when color is meaningless.
        sizes: Size variants (attribute `size`).
        size_in_title: Whether the size appears in titles (screens yes, clothes no).
        materials: Materials (attribute `material` / `材质`).
        capacities: Capacities or storage (attribute `capacity`, always in titles).
        fits: Compatible devices (attribute `fits`, phone cases): zh query form, en name.
    """

    key: str
    zh_terms: tuple[str, ...]
    en_terms: tuple[str, ...]
    label_en: str
    department: str
    brands: tuple[Brand, ...]
    price_median: float
    price_sigma: float
    share: float = 1.0
    colors: tuple[str, ...] = ()
    sizes: tuple[Term, ...] = ()
    size_in_title: bool = False
    materials: tuple[Term, ...] = ()
    capacities: tuple[Term, ...] = ()
    fits: tuple[Term, ...] = ()

    @property
    def name(self) -> Term:
        """The canonical names."""
        return Term(self.zh_terms[0], self.en_terms[0])

    @property
    def label(self) -> str:
        """Value of the `category` column, e.g. "笔记本电脑 / Laptops"."""
        return f"{self.zh_terms[0]} / {self.label_en}"


COLORS: dict[str, Term] = {
    "black": Term("黑色", "black"),
    "white": Term("白色", "white"),
    "silver": Term("银色", "silver"),
    "gray": Term("灰色", "gray"),
    "gold": Term("金色", "gold"),
    "red": Term("红色", "red"),
    "pink": Term("粉色", "pink"),
    "blue": Term("蓝色", "blue"),
    "navy": Term("藏青色", "navy"),
    "green": Term("绿色", "green"),
    "purple": Term("紫色", "purple"),
    "yellow": Term("黄色", "yellow"),
    "beige": Term("米色", "beige"),
    "brown": Term("棕色", "brown"),
    "orange": Term("橙色", "orange"),
    "clear": Term("透明", "clear"),
}
COLOR_KEYS: tuple[str, ...] = tuple(COLORS)

CLOTHING_SIZES: tuple[Term, ...] = tuple(Term(s, s) for s in ("S", "M", "L", "XL", "XXL"))
SHOE_SIZES: tuple[Term, ...] = tuple(Term(f"{n}码", f"EU {n}") for n in range(35, 46))


def inches(*values: str) -> tuple[Term, ...]:
    """Screen sizes as terms: "14" -> 14英寸 / 14-inch."""
    return tuple(Term(f"{v}英寸", f"{v}-inch") for v in values)


def same(*values: str) -> tuple[Term, ...]:
    """Terms written the same in both languages (256GB, 20000mAh)."""
    return tuple(Term(v, v) for v in values)


def litres(*values: str) -> tuple[Term, ...]:
    """Capacities in litres: "1.5" -> 1.5升 / 1.5L."""
    return tuple(Term(f"{v}升", f"{v}L") for v in values)


DEPARTMENTS: dict[str, Department] = {
    department.key: department
    for department in (
        Department(
            "electronics",
            Term("数码电子", "Electronics"),
            (
                Term("轻薄", "slim"),
                Term("高性能", "high-performance"),
                Term("旗舰", "flagship"),
                Term("新款", "new"),
                Term("便携", "portable"),
            ),
            (
                Term("全国联保，正品保障", "Official warranty included."),
                Term("续航持久，性能强劲", "Long battery life and strong performance."),
                Term("支持以旧换新", "Trade-in supported."),
            ),
        ),
        Department(
            "accessories",
            Term("数码配件", "Accessories"),
            (
                Term("快充", "fast-charging"),
                Term("耐用", "durable"),
                Term("超薄", "ultra-thin"),
                Term("便携", "portable"),
            ),
            (
                Term("兼容多种设备", "Works with most devices."),
                Term("一年质保，售后无忧", "One-year warranty."),
                Term("小巧便携，出行必备", "Small enough for every trip."),
            ),
        ),
        Department(
            "fashion",
            Term("服饰", "Fashion"),
            (
                Term("修身", "slim-fit"),
                Term("宽松", "loose"),
                Term("复古", "vintage"),
                Term("百搭", "versatile"),
                Term("时尚", "stylish"),
            ),
            (
                Term("柔软亲肤，四季可穿", "Soft on the skin, for every season."),
                Term("七天无理由退换", "Free returns within seven days."),
                Term("新品上市，限时优惠", "New arrival, limited-time offer."),
            ),
        ),
        Department(
            "shoes",
            Term("鞋靴", "Shoes"),
            (
                Term("轻便", "lightweight"),
                Term("透气", "breathable"),
                Term("防滑", "non-slip"),
                Term("复古", "retro"),
            ),
            (
                Term("脚感舒适，久走不累", "Comfortable for all-day walking."),
                Term("正品保障，支持验货", "Guaranteed authentic."),
                Term("七天无理由退换", "Free returns within seven days."),
            ),
        ),
        Department(
            "appliances",
            Term("家用电器", "Home Appliances"),
            (
                Term("家用", "home"),
                Term("智能", "smart"),
                Term("大容量", "large-capacity"),
                Term("静音", "quiet"),
                Term("多功能", "multi-function"),
            ),
            (
                Term("一键操作，省时省心", "One-touch operation."),
                Term("整机两年保修", "Two-year warranty."),
                Term("易清洗，节能省电", "Easy to clean and energy efficient."),
            ),
        ),
        Department(
            "beauty",
            Term("美妆个护", "Beauty"),
            (
                Term("保湿", "moisturizing"),
                Term("持久", "long-lasting"),
                Term("滋润", "nourishing"),
                Term("经典", "classic"),
            ),
            (
                Term("专柜正品，假一赔十", "Authentic counter product."),
                Term("温和不刺激，敏感肌可用", "Gentle, suitable for sensitive skin."),
                Term("送礼佳品，附赠礼袋", "Gift bag included."),
            ),
        ),
        Department(
            "sports",
            Term("运动户外", "Sports & Outdoors"),
            (
                Term("防滑", "non-slip"),
                Term("轻便", "lightweight"),
                Term("户外", "outdoor"),
                Term("专业", "pro"),
            ),
            (
                Term("运动健身好帮手", "Made for training and travel."),
                Term("结实耐用，经久不坏", "Built to last."),
                Term("环保材料，无异味", "Eco-friendly, odour-free materials."),
            ),
        ),
        Department(
            "food",
            Term("食品饮料", "Food & Drinks"),
            (
                Term("精选", "premium"),
                Term("新鲜", "fresh"),
                Term("有机", "organic"),
                Term("浓香", "rich"),
            ),
            (
                Term("产地直发，新鲜到家", "Shipped fresh from the source."),
                Term("独立包装，方便携带", "Individually packed."),
                Term("送礼自饮两相宜", "For gifting or everyday enjoyment."),
            ),
        ),
    )
}
