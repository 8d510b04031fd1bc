"""docs/operate/roles.md is generated from the role settings models: a setting added, renamed or
re-described in code and not in the page (or the reverse) fails here."""

from __future__ import annotations

from pathlib import Path

from breakfix.roles.page import own_fields, render
from breakfix.roles.settings import ROLES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operate" / "roles.md"


def test_roles_page_is_the_generated_one() -> None:
    assert PAGE.read_text() == render(), "regenerate: python -m breakfix.roles.page > docs/operate/roles.md"


def test_every_role_and_each_of_its_own_settings_is_on_the_page() -> None:
    text = PAGE.read_text()
    for role, model in ROLES.items():
        assert f"## {role}\n" in text and f"`breakfix run --role {role}`" in text
        for var, _default, _what in own_fields(model):
            assert f"| `{var}` |" in text, var
