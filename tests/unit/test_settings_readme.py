"""The README's settings table is the code's: every setting, its default and its description."""

from __future__ import annotations

from pathlib import Path

from streams.settings import StreamSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_matches_the_settings_class() -> None:
    text = README.read_text()
    section = text[text.index("## Settings\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = {line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}
    expected = StreamSettings.describe()
    assert rows == {var for var, _, _ in expected}
    for var, default, what in expected:
        assert f"| `{var}` | `{default}` | {what.replace('|', '/')} |" in section, var
