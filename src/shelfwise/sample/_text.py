"""Titles, descriptions and attribute JSON of sample items, mixing Chinese and English.

Titles come in three styles, as on Chinese marketplaces:

- Chinese first: "联想 ThinkPad 14英寸 512GB 轻薄笔记本电脑 银色"
- English first, with the Chinese category term: "Lenovo ThinkPad 14-inch Slim Laptop
  Silver 笔记本电脑"
- English only: "Lenovo ThinkPad Slim Laptop, Silver, 14-inch, 512GB"
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from shelfwise.sample._vocabulary import Brand, Category, Department, Term

# Shares of the title styles: Chinese first, English first, English only.
_TITLE_STYLE_SHARES = (0.5, 0.3, 0.2)
# Shares of description languages: Chinese, English, both.
_DESCRIPTION_SHARES = (0.45, 0.25, 0.3)


@dataclass(frozen=True)
class ItemText:
    """The text columns of one catalog row."""

    title: str
    description: str
    brand: str
    attributes: str


def capitalise(text: str) -> str:
    """Upper-case the first letter of each space-separated word ("slim-fit" -> "Slim-fit")."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def _join(parts: list[str]) -> str:
    return " ".join(p for p in parts if p)


def _chinese_brand(brand: Brand, rng: np.random.Generator) -> str:
    if brand.zh is None:
        return brand.en
    return str(rng.choice([brand.zh, brand.zh, f"{brand.en}/{brand.zh}", f"{brand.zh} {brand.en}"]))


def _title(
    style: int,
    category: Category,
    brand: Brand,
    *,
    line: str,
    adjective: Term,
    attributes: dict[str, Term | None],
    in_title: dict[str, bool],
    rng: np.random.Generator,
) -> str:
    def pick(key: str, language: str) -> str:
        term = attributes[key]
        if term is None or not in_title[key]:
            return ""
        return term.zh if language == "zh" else term.en

    fits = attributes["fits"]
    color = attributes["color"]
    if style == 0:
        zh_term = category.zh_terms[0] if rng.random() < 0.8 else str(rng.choice(category.zh_terms))
        glue = "" if rng.random() < 0.6 else " "
        return _join(
            [
                _chinese_brand(brand, rng),
                line,
                f"适用{fits.en}" if fits else "",
                pick("size", "zh"),
                pick("capacity", "zh"),
                pick("material", "zh"),
                f"{adjective.zh}{glue}{zh_term}",
                color.zh if color else "",
            ]
        )
    english = capitalise(category.en_terms[0])
    if style == 1:
        return _join(
            [
                brand.en,
                line,
                f"for {fits.en}" if fits else "",
                pick("size", "en"),
                pick("capacity", "en"),
                capitalise(adjective.en),
                english,
                capitalise(color.en) if color else "",
                category.zh_terms[0],
            ]
        )
    head = _join(
        [brand.en, line, capitalise(adjective.en), capitalise(pick("material", "en")), english]
        + ([f"for {fits.en}"] if fits else [])
    )
    tail = [capitalise(color.en) if color else "", pick("size", "en"), pick("capacity", "en")]
    return ", ".join([head] + [t for t in tail if t])


def _description(
    language: int,
    category: Category,
    brand: Brand,
    *,
    line: str,
    adjective: Term,
    selling_point: Term,
    color: Term | None,
    material: Term | None,
) -> str:
    zh_brand = brand.zh or brand.en
    zh = f"{zh_brand}{line}{category.zh_terms[0]}，{adjective.zh}设计"
    zh += f"，{color.zh}款。" if color else "。"
    zh += f"{material.zh}材质，" if material else ""
    zh += f"{selling_point.zh}。"
    named = _join([brand.en, line, category.en_terms[0]])
    en = f"The {named} in {color.en}." if color else f"The {named}."
    article = "An" if adjective.en[:1] in "aeiou" else "A"
    en += f" {article} {adjective.en} design"
    en += f" made of {material.en}." if material else "."
    en += f" {selling_point.en}"
    return (zh, en, f"{zh} {en}")[language]


def render_item(
    category: Category,
    department: Department,
    brand: Brand,
    *,
    line: str,
    color: Term | None,
    size: Term | None,
    material: Term | None,
    capacity: Term | None,
    fits: Term | None,
    rng: np.random.Generator,
) -> ItemText:
    """Title, description, brand label and attribute JSON of one item.

    Args:
        category: The item's category.
        department: The category's department (adjectives, selling points).
        brand: The item's brand.
        line: Product line or model ("" for none).
        color: Color, if the category has colors.
        size: Size variant, if any.
        material: Material, if any.
        capacity: Capacity or storage, if any.
        fits: Compatible device, if any.
        rng: Random generator for the style choices.

    Returns:
        The item's text columns.
    """
    adjective = department.adjectives[int(rng.integers(len(department.adjectives)))]
    selling_point = department.selling_points[int(rng.integers(len(department.selling_points)))]
    attributes: dict[str, Term | None] = {
        "color": color,
        "size": size,
        "material": material,
        "capacity": capacity,
        "fits": fits,
    }
    in_title = {
        "color": True,
        "size": category.size_in_title,
        "material": rng.random() < 0.4,
        "capacity": True,
        "fits": True,
    }
    style = int(rng.choice(3, p=_TITLE_STYLE_SHARES))
    title = _title(
        style,
        category,
        brand,
        line=line,
        adjective=adjective,
        attributes=attributes,
        in_title=in_title,
        rng=rng,
    )
    description = _description(
        int(rng.choice(3, p=_DESCRIPTION_SHARES)),
        category,
        brand,
        line=line,
        adjective=adjective,
        selling_point=selling_point,
        color=color,
        material=material,
    )
    record: dict[str, str] = {}
    if color is not None:
        record["color"] = color.en
        record["颜色"] = color.zh
    if size is not None:
        record["size"] = size.en
    if material is not None:
        record["material"] = material.en
        record["材质"] = material.zh
    if capacity is not None:
        record["capacity"] = capacity.en
    if fits is not None:
        record["fits"] = fits.en
    if line:
        record["model"] = line
    return ItemText(
        title=title,
        description=description,
        brand=f"{brand.en}/{brand.zh}" if brand.zh else brand.en,
        attributes=json.dumps(record, ensure_ascii=False),
    )
