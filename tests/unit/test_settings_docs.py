"""The settings page's table is the code's: every setting, its default and its description."""

from __future__ import annotations

from pathlib import Path

from streams.settings import StreamSettings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operate" / "settings.md"


def test_settings_page_table_matches_the_settings_class() -> None:
    text = PAGE.read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")}
    expected = StreamSettings.describe()
    assert rows == {var for var, _, _ in expected}
    for var, default, what in expected:
        assert f"| `{var}` | `{default}` | {what.replace('|', '/')} |" in text, var
