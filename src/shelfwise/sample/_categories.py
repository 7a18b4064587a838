"""The sample shop's category table: 30 categories in 8 departments.

Categories are listed department by department; brands within a category are listed
from most to least common. Real brand names mix with a few invented ones.
"""

from __future__ import annotations

from shelfwise.sample._vocabulary import (
    CLOTHING_SIZES,
    SHOE_SIZES,
    Brand,
    Category,
    Term,
    inches,
    litres,
    same,
)

B = Brand
T = Term

_GADGET_COLORS = ("black", "white", "silver", "gray", "blue")
_CLOTHES_COLORS = ("black", "white", "red", "pink", "blue", "navy", "green", "beige", "gray")
_SHOE_COLORS = ("black", "white", "red", "blue", "gray", "pink", "brown")

# Positional fields: key, zh_terms, en_terms, label_en, department, brands, price_median,
# price_sigma, share, colors, sizes, size_in_title; the rest by keyword.
# fmt: off
CATEGORIES: tuple[Category, ...] = (
    # --- electronics -----------------------------------------------------------------
    Category(
        "laptop", ("笔记本电脑", "笔记本"), ("laptop", "notebook"), "Laptops", "electronics",
        (
            B("Lenovo", "联想", ("ThinkPad", "小新", "Legion")),
            B("Apple", "苹果", ("MacBook Air", "MacBook Pro"), 0.5),
            B("Huawei", "华为", ("MateBook",), 0.2), B("Dell", "戴尔", ("XPS", "Inspiron")),
            B("ASUS", "华硕", ("ZenBook", "VivoBook")), B("HP", "惠普", ("Pavilion", "EliteBook")),
            B("Xiaomi", "小米", ("RedmiBook",), -0.3), B("Nordvik", "诺维克", ("Air",), -0.5),
        ),
        5999.0, 0.35, 1.4, _GADGET_COLORS, inches("13.3", "14", "15.6", "16"), True,
        capacities=same("512GB", "1TB"),
    ),
    Category(
        "phone", ("手机", "智能手机"), ("phone", "smartphone"), "Phones", "electronics",
        (
            B("Apple", "苹果", ("iPhone 15", "iPhone 15 Pro"), 0.4),
            B("Huawei", "华为", ("Mate 60", "P60"), 0.2),
            B("Xiaomi", "小米", ("Xiaomi 14", "Redmi Note 13"), -0.4),
            B("OPPO", None, ("Reno 11", "Find X7")), B("vivo", None, ("X100", "S18")),
            B("Honor", "荣耀", ("Magic6",), -0.1), B("Samsung", "三星", ("Galaxy S24",), 0.2),
        ),
        3999.0, 0.45, 1.4, ("black", "white", "blue", "green", "purple", "gold"),
        capacities=same("128GB", "256GB", "512GB", "1TB"),
    ),
    Category(
        "headphones", ("耳机", "蓝牙耳机"), ("headphones", "earbuds"), "Headphones",
        "electronics",
        (
            B("Sony", "索尼", ("WH-1000XM5", "WF-1000XM5"), 0.4),
            B("Apple", "苹果", ("AirPods Pro", "AirPods"), 0.3), B("Huawei", "华为", ("FreeBuds",)),
            B("Xiaomi", "小米", ("Redmi Buds",), -0.8), B("Bose", None, ("QuietComfort",), 0.5),
            B("Edifier", "漫步者", (), -0.6), B("Soundwave", "声浪", (), -0.9),
        ),
        599.0, 0.7, 1.3, ("black", "white", "silver", "blue", "pink"),
    ),
    Category(
        "tablet", ("平板电脑", "平板"), ("tablet", "ipad"), "Tablets", "electronics",
        (
            B("Apple", "苹果", ("iPad Air", "iPad Pro"), 0.3), B("Huawei", "华为", ("MatePad",)),
            B("Xiaomi", "小米", ("Xiaomi Pad 6",), -0.3),
            B("Lenovo", "联想", ("Tab P12", "小新Pad"), -0.3),
            B("Samsung", "三星", ("Galaxy Tab",)),
        ),
        2999.0, 0.4, 0.8, ("gray", "silver", "blue", "purple"), inches("11", "12.4", "13"), True,
        capacities=same("128GB", "256GB"),
    ),
    Category(
        "smartwatch", ("智能手表", "手表"), ("smartwatch", "watch"), "Smartwatches",
        "electronics",
        (
            B("Apple", "苹果", ("Apple Watch",), 0.4), B("Huawei", "华为", ("Watch GT 4",)),
            B("Xiaomi", "小米", ("Smart Band 8",), -1.2), B("Garmin", "佳明", ("Forerunner",), 0.4),
            B("Amazfit", "华米", (), -0.6),
        ),
        1299.0, 0.6, 0.8, ("black", "silver", "pink", "green"),
    ),
    Category(
        "camera", ("相机", "数码相机", "微单"), ("camera", "mirrorless camera"), "Cameras",
        "electronics",
        (
            B("Canon", "佳能", ("EOS R50", "EOS R6")), B("Sony", "索尼", ("Alpha 7 IV", "ZV-E10")),
            B("Nikon", "尼康", ("Z50",)), B("Fujifilm", "富士", ("X-T30", "X100VI"), 0.2),
            B("DJI", "大疆", ("Osmo Pocket 3",), -0.8),
        ),
        6999.0, 0.5, 0.6, ("black", "silver"),
    ),
    # --- accessories -----------------------------------------------------------------
    Category(
        "phone_case", ("手机壳", "保护壳"), ("phone case", "case"), "Phone Cases", "accessories",
        (
            B("ESR", "亿色"), B("Baseus", "倍思"), B("Apple", "苹果", ("MagSafe",), 1.2),
            B("Spigen", None, (), 0.3), B("Lumo", "路墨", (), -0.4),
        ),
        49.0, 0.5, 1.3, ("black", "clear", "pink", "blue", "green", "purple"),
        materials=(T("硅胶", "silicone"), T("皮革", "leather"), T("TPU", "TPU")),
        fits=(
            T("苹果15", "iPhone 15"),
            T("苹果15 Pro", "iPhone 15 Pro"),
            T("华为Mate60", "Huawei Mate 60"),
            T("小米14", "Xiaomi 14"),
            T("三星S24", "Samsung S24"),
        ),
    ),
    Category(
        "charger", ("充电器", "充电头"), ("charger", "fast charger"), "Chargers", "accessories",
        (
            B("Anker", "安克"), B("Ugreen", "绿联"), B("Baseus", "倍思"),
            B("Apple", "苹果", (), 0.8), B("Xiaomi", "小米", (), -0.2),
        ),
        99.0, 0.45, 1.0, ("white", "black"), capacities=same("20W", "35W", "65W", "100W"),
    ),
    Category(
        "power_bank", ("充电宝", "移动电源"), ("power bank", "portable charger"), "Power Banks",
        "accessories",
        (
            B("Anker", "安克", (), 0.2), B("Xiaomi", "小米"), B("Baseus", "倍思"),
            B("Romoss", "罗马仕", (), -0.4),
        ),
        129.0, 0.4, 0.8, ("black", "white", "blue", "pink"),
        capacities=same("10000mAh", "20000mAh"),
    ),
    Category(
        "mouse", ("鼠标", "无线鼠标"), ("mouse", "wireless mouse"), "Mice", "accessories",
        (
            B("Logitech", "罗技", ("MX Master 3S", "G502"), 0.3),
            B("Razer", "雷蛇", ("DeathAdder",), 0.3), B("Xiaomi", "小米", (), -0.6),
            B("Lenovo", "联想", (), -0.5),
        ),
        149.0, 0.7, 0.8, ("black", "white", "gray", "pink"),
    ),
    # --- fashion -----------------------------------------------------------------------
    Category(
        "dress", ("连衣裙", "裙子"), ("dress", "summer dress"), "Dresses", "fashion",
        (
            B("Uniqlo", "优衣库"), B("Zara", None, (), 0.2), B("ONLY", None, (), 0.2),
            B("Peacebird", "太平鸟"), B("Vero Moda", None, (), 0.1), B("Lumiere", "露米", (), -0.5),
        ),
        299.0, 0.5, 1.3, _CLOTHES_COLORS, CLOTHING_SIZES,
        materials=(T("棉", "cotton"), T("真丝", "silk"), T("雪纺", "chiffon"), T("亚麻", "linen")),
    ),
    Category(
        "tshirt", ("T恤", "短袖"), ("t-shirt", "tee"), "T-Shirts", "fashion",
        (
            B("Uniqlo", "优衣库"), B("Nike", "耐克", (), 0.4), B("Adidas", "阿迪达斯", (), 0.4),
            B("Li-Ning", "李宁", (), 0.1), B("H&M", None, (), -0.2), B("Kaiyo", "凯优", (), -0.6),
        ),
        99.0, 0.45, 1.2, _CLOTHES_COLORS, CLOTHING_SIZES,
        materials=(T("纯棉", "cotton"), T("速干", "quick-dry")),
    ),
    Category(
        "jeans", ("牛仔裤",), ("jeans", "denim jeans"), "Jeans", "fashion",
        (
            B("Levi's", "李维斯", ("501", "511"), 0.4), B("Uniqlo", "优衣库"),
            B("Lee", None, (), 0.2),
            B("Semir", "森马", (), -0.3), B("Zara", None, (), 0.1),
        ),
        299.0, 0.45, 1.0, ("blue", "black", "gray", "white"), CLOTHING_SIZES,
        materials=(T("弹力棉", "stretch cotton"),),
    ),
    Category(
        "down_jacket", ("羽绒服",), ("down jacket", "puffer jacket"), "Down Jackets", "fashion",
        (
            B("Bosideng", "波司登"), B("Uniqlo", "优衣库", (), -0.5),
            B("The North Face", "北面", ("1996 Nuptse",), 0.4),
            B("Canada Goose", "加拿大鹅", (), 1.4),
            B("Semir", "森马", (), -0.6),
        ),
        899.0, 0.6, 0.9, ("black", "white", "navy", "red", "beige", "green"), CLOTHING_SIZES,
        materials=(T("白鸭绒", "duck down"), T("白鹅绒", "goose down")),
    ),
    Category(
        "hoodie", ("卫衣",), ("hoodie", "sweatshirt"), "Hoodies", "fashion",
        (
            B("Nike", "耐克", (), 0.3), B("Adidas", "阿迪达斯", (), 0.3),
            B("Champion", None, (), 0.2),
            B("Li-Ning", "李宁"), B("Anta", "安踏", (), -0.2),
        ),
        299.0, 0.4, 0.9, ("black", "gray", "white", "navy", "green", "pink"), CLOTHING_SIZES,
        materials=(T("纯棉", "cotton"), T("加绒", "fleece")),
    ),
    # --- shoes -------------------------------------------------------------------------
    Category(
        "sneakers", ("运动鞋", "跑步鞋", "球鞋"), ("sneakers", "running shoes"), "Sneakers",
        "shoes",
        (
            B("Nike", "耐克", ("Air Max", "Air Force 1", "Pegasus"), 0.2),
            B("Adidas", "阿迪达斯", ("Ultraboost", "Samba"), 0.2),
            B("Li-Ning", "李宁", ("飞电", "韦德之道")),
            B("Anta", "安踏", ("KT",), -0.2), B("New Balance", "新百伦", ("574", "990"), 0.2),
            B("Skechers", "斯凯奇", (), -0.1), B("Xtep", "特步", (), -0.4),
        ),
        499.0, 0.45, 1.4, _SHOE_COLORS, SHOE_SIZES,
        materials=(T("网面", "mesh"), T("真皮", "leather")),
    ),
    Category(
        "boots", ("靴子", "马丁靴"), ("boots", "ankle boots"), "Boots", "shoes",
        (
            B("Dr. Martens", "马丁", ("1460",), 0.4), B("Timberland", "添柏岚", (), 0.4),
            B("UGG", None, (), 0.3), B("Belle", "百丽"), B("Camel", "骆驼", (), -0.4),
        ),
        699.0, 0.45, 0.8, ("black", "brown", "beige"), SHOE_SIZES,
        materials=(T("真皮", "leather"), T("麂皮", "suede")),
    ),
    Category(
        "heels", ("高跟鞋",), ("high heels", "heels"), "High Heels", "shoes",
        (
            B("Belle", "百丽"), B("Stuart Weitzman", None, (), 1.0),
            B("Charles & Keith", None, (), -0.2), B("Staccato", "思加图"),
            B("Velora", "维罗拉", (), -0.6),
        ),
        459.0, 0.5, 0.7, ("black", "red", "beige", "pink", "silver"), SHOE_SIZES,
        materials=(T("漆皮", "patent leather"), T("羊皮", "lambskin")),
    ),
    # --- appliances --------------------------------------------------------------------
    Category(
        "coffee_machine", ("咖啡机",), ("coffee machine", "espresso machine"), "Coffee Machines",
        "appliances",
        (
            B("De'Longhi", "德龙", ("Dedica", "Magnifica"), 0.3),
            B("Nespresso", "奈斯派索", ("Vertuo",)),
            B("Philips", "飞利浦"), B("Breville", "铂富", (), 0.5), B("Bear", "小熊", (), -1.0),
        ),
        1999.0, 0.7, 0.8, ("black", "silver", "white", "red"), capacities=litres("1.1", "1.8"),
    ),
    Category(
        "rice_cooker", ("电饭煲", "电饭锅"), ("rice cooker",), "Rice Cookers", "appliances",
        (
            B("Midea", "美的"), B("Supor", "苏泊尔"), B("Joyoung", "九阳", (), -0.2),
            B("Zojirushi", "象印", (), 0.8), B("Panasonic", "松下", (), 0.5),
        ),
        399.0, 0.5, 0.8, ("white", "black", "silver"), capacities=litres("3", "4", "5"),
    ),
    Category(
        "air_fryer", ("空气炸锅",), ("air fryer",), "Air Fryers", "appliances",
        (
            B("Midea", "美的"), B("Philips", "飞利浦", (), 0.6), B("Bear", "小熊", (), -0.3),
            B("Joyoung", "九阳"), B("Supor", "苏泊尔"),
        ),
        299.0, 0.45, 0.8, ("white", "black", "green"), capacities=litres("4", "5.5", "6.5"),
    ),
    Category(
        "vacuum", ("吸尘器", "扫地机器人"), ("vacuum cleaner", "vacuum"), "Vacuum Cleaners",
        "appliances",
        (
            B("Dyson", "戴森", ("V12", "V15"), 0.6), B("Xiaomi", "小米", ("Mijia",), -0.5),
            B("Dreame", "追觅"), B("Ecovacs", "科沃斯"), B("Roborock", "石头", (), 0.2),
        ),
        1999.0, 0.6, 0.8, ("gray", "white", "purple", "gold"),
    ),
    # --- beauty ------------------------------------------------------------------------
    Category(
        "lipstick", ("口红", "唇膏"), ("lipstick", "lip color"), "Lipsticks", "beauty",
        (
            B("MAC", "魅可"), B("Dior", "迪奥", ("Rouge 999",), 0.4), B("YSL", "圣罗兰", (), 0.4),
            B("Armani", "阿玛尼", (), 0.4), B("Florasis", "花西子", (), -0.4),
            B("Perfect Diary", "完美日记", (), -0.9),
        ),
        229.0, 0.5, 1.2, ("red", "pink", "orange", "brown", "purple"),
        materials=(T("哑光", "matte"), T("滋润", "satin")),
    ),
    Category(
        "face_cream", ("面霜", "保湿霜"), ("face cream", "moisturizer"), "Face Creams", "beauty",
        (
            B("Estee Lauder", "雅诗兰黛", (), 0.4), B("Lancome", "兰蔻", (), 0.4),
            B("Pechoin", "百雀羚", (), -0.8), B("Winona", "薇诺娜", (), -0.4),
            B("Kiehl's", "科颜氏", (), 0.2), B("Olay", "玉兰油", (), -0.5),
        ),
        399.0, 0.6, 1.0, capacities=same("50ml", "75ml"),
    ),
    Category(
        "perfume", ("香水",), ("perfume", "eau de parfum"), "Perfumes", "beauty",
        (
            B("Chanel", "香奈儿", ("No.5", "Coco"), 0.4),
            B("Dior", "迪奥", ("J'adore", "Sauvage"), 0.3),
            B("Jo Malone", "祖玛珑"), B("Gucci", "古驰", (), 0.1), B("Auren", "奥仁", (), -1.0),
        ),
        899.0, 0.45, 0.8, capacities=same("30ml", "50ml", "100ml"),
    ),
    # --- sports ------------------------------------------------------------------------
    Category(
        "yoga_mat", ("瑜伽垫",), ("yoga mat",), "Yoga Mats", "sports",
        (
            B("Lululemon", "露露乐蒙", (), 0.9), B("Keep", None, (), -0.2),
            B("Decathlon", "迪卡侬", (), -0.4), B("Manduka", None, (), 0.8),
            B("Zenko", "禅可", (), -0.7),
        ),
        159.0, 0.55, 0.8, ("purple", "pink", "blue", "green", "black", "gray"),
        materials=(T("TPE", "TPE"), T("天然橡胶", "natural rubber"), T("NBR", "NBR")),
    ),
    Category(
        "backpack", ("双肩包", "背包"), ("backpack", "rucksack"), "Backpacks", "sports",
        (
            B("Samsonite", "新秀丽", (), 0.4), B("The North Face", "北面", (), 0.3),
            B("Xiaomi", "小米", (), -0.6), B("Herschel", None, (), 0.1),
            B("Osprey", "小鹰", (), 0.5),
        ),
        399.0, 0.55, 0.9, ("black", "gray", "navy", "green", "brown"),
        capacities=litres("20", "30", "40"),
        materials=(T("尼龙", "nylon"), T("帆布", "canvas")),
    ),
    Category(
        "water_bottle", ("保温杯", "水杯"), ("water bottle", "thermos"), "Water Bottles",
        "sports",
        (
            B("Thermos", "膳魔师", (), 0.2), B("Zojirushi", "象印", (), 0.3),
            B("Stanley", "史丹利", (), 0.4), B("Fuguang", "富光", (), -0.5),
            B("Brightleaf", "明叶", (), -0.8),
        ),
        129.0, 0.5, 0.8, ("black", "white", "pink", "green", "blue", "silver"),
        capacities=same("350ml", "500ml", "750ml"),
        materials=(T("316不锈钢", "stainless steel"),),
    ),
    # --- food --------------------------------------------------------------------------
    Category(
        "coffee_beans", ("咖啡豆",), ("coffee beans", "coffee"), "Coffee Beans", "food",
        (
            B("Starbucks", "星巴克", (), 0.2), B("Lavazza", "拉瓦萨"), B("Illy", "意利", (), 0.3),
            B("Manner", None, (), -0.2), B("Yunfei", "云啡", (), -0.5),
        ),
        89.0, 0.4, 0.7, capacities=same("250g", "500g", "1kg"),
        materials=(T("阿拉比卡", "arabica"), T("深度烘焙", "dark roast")),
    ),
    Category(
        "tea", ("茶叶", "茶"), ("tea", "tea leaves"), "Tea", "food",
        (
            B("Bama", "八马", (), 0.2), B("Zhang Yiyuan", "张一元"),
            B("Xiaoguan", "小罐茶", (), 0.5),
            B("Dayi", "大益", (), 0.1), B("Tenfu", "天福茗茶", (), -0.2),
        ),
        199.0, 0.6, 0.7, capacities=same("100g", "250g", "500g"),
        materials=(
            T("西湖龙井", "Longjing green tea"),
            T("普洱", "Pu-erh"),
            T("铁观音", "Tieguanyin oolong"),
            T("大红袍", "Da Hong Pao"),
        ),
    ),
)
# fmt: on
