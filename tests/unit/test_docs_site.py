"""The README stays a front page and the docs site stays navigable: the README is short and links
only to pages that exist, every relative link in the docs resolves, the Xid 79 trace names files
that exist, and the dependencies page names every package ``pyproject.toml`` declares."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_TOP = "schemas|detectors|policy|streams|actuators|breakfix|tests|bench|deploy"
_PATH = re.compile(rf"`((?:{_TOP})/[\w/.-]+\.\w+)`")


def _links(path: Path) -> list[str]:
    """Relative link targets of a markdown file, outside code blocks, without their anchors."""
    text = _FENCE.sub("", path.read_text())
    targets = [t.split("#", 1)[0] for t in _LINK.findall(text)]
    return [t for t in targets if t and not re.match(r"^[a-z]+:", t)]


def test_readme_is_a_front_page_of_at_most_200_lines() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_readme_links_only_to_existing_docs_pages() -> None:
    links = _links(README)
    assert links, "the README links into the docs site"
    for target in links:
        page = (REPO / target).resolve()
        assert page.is_relative_to(DOCS) and page.suffix == ".md", f"README links outside docs/: {target}"
        assert page.is_file(), f"README links to a missing page: {target}"


def test_every_relative_link_in_the_docs_resolves() -> None:
    broken = [
        f"{page.relative_to(REPO)} -> {target}"
        for page in sorted(DOCS.rglob("*.md"))
        for target in _links(page)
        if not (page.parent / target).resolve().exists()
    ]
    assert broken == []


def test_the_xid79_trace_names_files_that_exist() -> None:
    cited = set(_PATH.findall((DOCS / "concepts" / "trace-xid79.md").read_text()))
    assert len(cited) > 20
    assert sorted(p for p in cited if not (REPO / p).is_file()) == []


def test_every_repository_file_a_docs_page_names_exists() -> None:
    """A moved or renamed module fails here until the docs that name it follow."""
    missing = [
        f"{page.relative_to(REPO)}: {path}"
        for page in [README, *sorted(DOCS.rglob("*.md"))]
        for path in sorted(set(_PATH.findall(page.read_text())))
        if not (REPO / path).exists()
    ]
    assert missing == []


def test_the_dependencies_page_names_every_declared_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in declared}
    page = (DOCS / "concepts" / "dependencies.md").read_text().lower()
    assert sorted(n for n in names if n not in page) == []


_COORDINATES = re.compile(
    "|".join(
        (
            r"\b[Ss]essions? [0-9]",  # numbered work sessions
            r"\b[Ss]eeds? 0[0-9]{2}\b",  # source-document numbers
            r"\b[Ss]eed doc",
            "DESIGN" + r"\.md",  # a design file the repository does not have
            r"\b[Ii]ssues? [0-9]+\b",  # tracker numbers (cite an upstream one as `project issue #N`)
        )
    )
)
_TEXT = {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".sh", ".cfg", ".ini", ".txt", ".sql", ".html"}


def test_no_build_process_coordinates_in_the_product() -> None:
    """Code, docs and tests name a rule or its public source, never how the code was built."""
    found = []
    for folder, subdirs, files in os.walk(REPO):
        subdirs[:] = [
            d for d in subdirs if not d.startswith(".") and d not in ("__pycache__", "node_modules")
        ]
        for name in files:
            path = Path(folder) / name
            if path.suffix not in _TEXT and name not in ("Makefile", "Dockerfile"):
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if _COORDINATES.search(line):
                    found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:100]}")
    assert found == []


def test_the_commands_page_names_every_cli_command() -> None:
    from typer.main import get_command

    from breakfix.cli.main import app

    commands = getattr(get_command(app), "commands", {})
    assert commands, "the CLI is a group of commands"
    text = (DOCS / "operate" / "commands.md").read_text()
    assert sorted(c for c in commands if f"breakfix {c}" not in text and f"`{c}`" not in text) == []


def test_the_guardrails_page_lists_every_registered_guardrail() -> None:
    from policy.guardrails import GUARDRAILS

    text = (DOCS / "concepts" / "guardrails.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")}
    assert rows == set(GUARDRAILS)
    for name, protects in GUARDRAILS.items():
        assert f"| `{name}` | {protects} |" in text, name


def test_the_control_contract_page_lists_every_lever_with_its_scopes_and_fields() -> None:
    from schemas.control import PAYLOADS, SCOPES

    text = (DOCS / "contracts" / "control.md").read_text()
    for kind, model in PAYLOADS.items():
        scopes = ", ".join(f"`{s.value}`" for s in sorted(SCOPES[kind], key=lambda s: s.value))
        fields = ", ".join(f"`{n}`" for n in model.model_fields)
        assert f"| `{kind.value}` | {scopes} | {fields} |" in text, kind
