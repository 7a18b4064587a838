from __future__ import annotations

import re

import shelfwise.errors as errors
from shelfwise.errors import ERROR_CODE_TO_HTTP_STATUS, ShelfwiseError


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def test_every_error_has_a_stable_code_with_an_http_status() -> None:
    for cls in [ShelfwiseError, *_subclasses(ShelfwiseError)]:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", cls.code), cls
        assert cls.code in ERROR_CODE_TO_HTTP_STATUS, (
            f"{cls.__name__} code {cls.code} has no status"
        )


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in [ShelfwiseError, *_subclasses(ShelfwiseError)]]
    assert len(codes) == len(set(codes))


def test_errors_are_drawn_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    for cls in _subclasses(ShelfwiseError):
        assert cls.__name__ in doc, f"{cls.__name__} missing from the tree in errors.py"


def test_builtin_bases_allow_plain_except() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.UnknownItemError, LookupError)
