"""The README's and docs/' promises: the two commands, the generated references, the CLI reference,
links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import click

from mlops_infra.cli import main
from mlops_infra.docs import (
    BEGIN,
    END,
    GAPS_BEGIN,
    GAPS_END,
    KEPT_BEGIN,
    KEPT_END,
    PRICES_BEGIN,
    PRICES_END,
    gap_reference,
    kept_reference,
    price_reference,
    spec_reference,
)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
SPEC_DOC = DOCS["spec.md"]
CLOUDS_DOC = DOCS["clouds.md"]
COST_DOC = DOCS["cost-and-policy.md"]


def first_block() -> list[str]:
    block = README.split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip()]


def test_readme_starts_with_two_commands() -> None:
    assert README.lstrip().startswith("# mlops-infra\n\n```bash")
    install, tests = first_block()
    assert "pip install '.[aws]'" in install and "mlops-infra plan --stack dev" in install
    assert "pip install '.[test]'" in tests and "pytest" in tests


def test_ci_runs_the_readme_commands() -> None:
    import subprocess

    ci = (ROOT / ".ci" / "run").read_text()
    assert 'bash -c "$main_command"' in ci and 'bash -c "$test_command"' in ci
    extract = ci[ci.index("readme_command() {"):]
    extract = extract[: extract.index("\n}\n") + 3]
    found = [
        subprocess.run(["bash", "-c", f"{extract}\nreadme_command {n}"], cwd=ROOT, capture_output=True,
                       text=True, check=True).stdout.strip()
        for n in (1, 2)
    ]
    assert found == first_block()


def test_spec_reference_is_generated_from_the_models() -> None:
    match = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), SPEC_DOC, re.S)
    assert match, "docs/spec.md lacks the generated spec reference"
    assert match.group(0) == spec_reference(), "run `python -m mlops_infra.docs` and paste the output"


def test_known_prices_are_listed_from_the_price_books() -> None:
    match = re.search(re.escape(PRICES_BEGIN) + r".*?" + re.escape(PRICES_END), COST_DOC, re.S)
    assert match, "docs/cost-and-policy.md lacks the generated list of known prices"
    assert match.group(0) == price_reference(), "run `python -m mlops_infra.docs prices` and paste the output"


def test_every_command_and_option_is_documented() -> None:
    for name, command in main.commands.items():
        assert f"mlops-infra {name}" in README, f"README does not document `{name}`"
        for param in command.params:
            if isinstance(param, click.Option):
                flag = max(param.opts, key=len)
                assert flag in README, f"README does not document {name} {flag}"


def test_examples_in_readme_spec_block_validate(tmp_path: Path) -> None:
    from mlops_infra.spec.validate import check_text

    block = SPEC_DOC.split("```yaml", 1)[1].split("```", 1)[0]
    check_text(block, "docs/spec.md")


def test_cloud_gaps_are_generated_from_the_backends() -> None:
    match = re.search(re.escape(GAPS_BEGIN) + r".*?" + re.escape(GAPS_END), CLOUDS_DOC, re.S)
    assert match, "docs/clouds.md lacks the generated table of cloud gaps"
    assert match.group(0) == gap_reference(), "run `python -m mlops_infra.docs gaps` and paste the output"


def test_the_readme_stays_short_and_its_links_resolve() -> None:
    assert len(README.splitlines()) < 120, "the README is a five-minute read: move reference material to docs/"
    for name, text in {"README.md": README, **{f"docs/{n}": t for n, t in DOCS.items()}}.items():
        base = ROOT if name == "README.md" else ROOT / "docs"
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
            assert (base / target).is_file(), f"{name} links to {target}, which does not exist"


def test_the_teardown_section_lists_what_each_cloud_keeps() -> None:
    text = DOCS["deploying.md"]
    match = re.search(re.escape(KEPT_BEGIN) + r".*?" + re.escape(KEPT_END), text, re.S)
    assert match, "docs/deploying.md lacks the generated list of what destroy keeps"
    assert match.group(0) == kept_reference(), "run `python -m mlops_infra.docs kept` and paste the output"
