"""Search queries: their structure, their text, and their ground-truth relevance.

A query is a `QuerySpec`: a category term in Chinese or English, optionally constrained
by a color, a brand or a compatible device, and sometimes mistyped. Specs are packed
into one integer code so that arrays of queries stay numeric; the text of each
distinct code is rendered once.

Ground-truth grade of an item for a query:

- 3: the item's category matches and so does every constraint (color, brand, device);
- 2: the category matches but a constraint does not;
- 1: the item is in the same department;
- 0: unrelated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shelfwise.sample._catalog import BRAND_NAMES, CATEGORY_DEPARTMENT, CatalogModel
from shelfwise.sample._categories import CATEGORIES
from shelfwise.sample._vocabulary import COLOR_KEYS, COLORS

ENGLISH, CHINESE = 0, 1
N_TYPOS = 4  # 0 = typed correctly, 1..3 = one of three kinds of typo

_MAX_TERMS = max(max(len(c.zh_terms), len(c.en_terms)) for c in CATEGORIES)
_MAX_FITS = max(len(c.fits) for c in CATEGORIES)
_CODE_SHAPE = (
    len(CATEGORIES),
    2,
    _MAX_TERMS,
    len(COLOR_KEYS) + 1,
    len(BRAND_NAMES) + 1,
    _MAX_FITS + 1,
    N_TYPOS,
)
N_TERMS: NDArray[np.int64] = np.array(
    [[len(c.en_terms), len(c.zh_terms)] for c in CATEGORIES], dtype=np.int64
)
HAS_FITS: NDArray[np.bool_] = np.array([bool(c.fits) for c in CATEGORIES])

# Chinese brand names by English name (the first category that names the brand wins).
_CHINESE_BRAND: dict[str, str] = {}
for _category in CATEGORIES:
    for _brand in _category.brands:
        if _brand.zh is not None:
            _CHINESE_BRAND.setdefault(_brand.en, _brand.zh)


@dataclass(frozen=True)
class QuerySpec:
    """Arrays describing queries, one entry per query (-1 = no constraint).

    Attributes:
        category: Category index.
        language: ENGLISH or CHINESE.
        term: Index into the category's terms in that language.
        color: Color index, or -1.
        brand: Global brand index, or -1.
        fits: Index into the category's compatible devices, or -1.
        typo: 0 for none, else the kind of typo.
    """

    category: NDArray[np.int64]
    language: NDArray[np.int64]
    term: NDArray[np.int64]
    color: NDArray[np.int64]
    brand: NDArray[np.int64]
    fits: NDArray[np.int64]
    typo: NDArray[np.int64]

    def encode(self) -> NDArray[np.int64]:
        """One integer code per query."""
        columns = (
            self.category,
            self.language,
            self.term,
            self.color + 1,
            self.brand + 1,
            self.fits + 1,
            self.typo,
        )
        return np.ravel_multi_index(columns, _CODE_SHAPE).astype(np.int64)

    @classmethod
    def decode(cls, codes: NDArray[np.int64]) -> QuerySpec:
        """The specs of integer codes made by `encode`."""
        category, language, term, color, brand, fits, typo = (
            np.asarray(a, dtype=np.int64) for a in np.unravel_index(codes, _CODE_SHAPE)
        )
        return cls(category, language, term, color - 1, brand - 1, fits - 1, typo)


def draw_specs(
    catalog: CatalogModel,
    target: NDArray[np.int64],
    chinese_share: NDArray[np.float64],
    rng: np.random.Generator,
    *,
    color_share: float = 0.3,
    brand_share: float = 0.2,
    fits_share: float = 0.6,
    typo_share: float = 0.05,
) -> QuerySpec:
    """Queries that shoppers type when looking for `target` items.

    Args:
        catalog: The catalog model.
        target: The item each shopper has in mind.
        chinese_share: Probability, per query, that it is typed in Chinese.
        rng: Random generator.
        color_share: Probability of naming the target's color.
        brand_share: Probability of naming the target's brand.
        fits_share: Probability of naming the device a case must fit.
        typo_share: Probability of a typo in an English query.

    Returns:
        One spec per target.
    """
    n = len(target)
    category = catalog.category[target]
    language = (rng.random(n) < chinese_share).astype(np.int64)
    n_terms = N_TERMS[category, language]
    synonym = np.minimum((rng.random(n) * n_terms).astype(np.int64), n_terms - 1)
    term = np.where(rng.random(n) < 0.6, 0, synonym)
    item_color = catalog.color[target]
    item_fits = catalog.fits[target]
    color = np.where((item_color >= 0) & (rng.random(n) < color_share), item_color, -1)
    brand = np.where(rng.random(n) < brand_share, catalog.brand[target], -1)
    fits = np.where((item_fits >= 0) & (rng.random(n) < fits_share), item_fits, -1)
    # Only English queries get typos: Chinese input methods pick whole words, and their
    # homophone mistakes are not modelled.
    mistyped = (language == ENGLISH) & (rng.random(n) < typo_share)
    typo = np.where(mistyped, rng.integers(1, N_TYPOS, size=n), 0)
    return QuerySpec(category, language, term, color, brand, fits, typo.astype(np.int64))


def _mistype(word: str, kind: int) -> str:
    """One deterministic typo: drop, swap or double a middle character."""
    if len(word) < 3:
        return word
    middle = len(word) // 2
    if kind == 1:
        return word[:middle] + word[middle + 1 :]
    if kind == 2:
        return word[: middle - 1] + word[middle] + word[middle - 1] + word[middle + 1 :]
    return word[:middle] + word[middle] + word[middle:]


def render_query(code: int) -> str:
    """The text of one query code, e.g. "red dress", "联想 笔记本电脑", "iphone 15 case"."""
    spec = QuerySpec.decode(np.array([code], dtype=np.int64))
    category = CATEGORIES[int(spec.category[0])]
    chinese = int(spec.language[0]) == CHINESE
    terms = category.zh_terms if chinese else category.en_terms
    term = terms[min(int(spec.term[0]), len(terms) - 1)]
    typo = int(spec.typo[0])
    if typo:
        words = term.split(" ")
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        words[longest] = _mistype(words[longest], typo)
        term = " ".join(words)
    parts: list[str] = []
    if spec.brand[0] >= 0:
        name = BRAND_NAMES[int(spec.brand[0])]
        parts.append(_CHINESE_BRAND.get(name, name.lower()) if chinese else name.lower())
    if spec.fits[0] >= 0:
        device = category.fits[int(spec.fits[0])]
        parts.append(device.zh if chinese else device.en.lower())
    if spec.color[0] >= 0:
        color = COLORS[COLOR_KEYS[int(spec.color[0])]]
        parts.append(color.zh if chinese else color.en)
    parts.append(term)
    return " ".join(parts)


def grades(
    catalog: CatalogModel,
    category: NDArray[np.int64],
    color: NDArray[np.int64],
    brand: NDArray[np.int64],
    fits: NDArray[np.int64],
    item: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Ground-truth grade (0..3) of items for queries; all inputs broadcast together.

    Args:
        catalog: The catalog model.
        category: Query category.
        color: Query color constraint or -1.
        brand: Query brand constraint or -1.
        fits: Query device constraint or -1.
        item: Item indices.

    Returns:
        Grades, broadcast shape of the inputs.
    """
    same_category = catalog.category[item] == category
    same_department = catalog.department[item] == CATEGORY_DEPARTMENT[category]
    matches = (
        ((color < 0) | (catalog.color[item] == color))
        & ((brand < 0) | (catalog.brand[item] == brand))
        & ((fits < 0) | (catalog.fits[item] == fits))
    )
    result: NDArray[np.int64] = np.where(
        same_category, np.where(matches, 3, 2), np.where(same_department, 1, 0)
    ).astype(np.int64)
    return result
