"""Text tools shared by search and the content recommender.

`tokenize` (one analyzer at index and query time, jieba for Chinese, Snowball stems),
`SpellCorrector` (typo correction over the catalog vocabulary), sentence encoders
behind the `TextEncoder` protocol (`build_encoder`), and the content-addressed cache
of encoded item vectors (`encode_with_cache`). Nothing here knows about models or
stages: `retrieval/` (BM25, dense, content) and `search/` import it.
"""

from __future__ import annotations

from shelfwise.text.embedding_cache import encode_with_cache
from shelfwise.text.encoders import DEFAULT_ENCODER, TextEncoder, build_encoder
from shelfwise.text.spell import SpellCorrector
from shelfwise.text.tokenize import tokenize

__all__ = [
    "DEFAULT_ENCODER",
    "SpellCorrector",
    "TextEncoder",
    "build_encoder",
    "encode_with_cache",
    "tokenize",
]
