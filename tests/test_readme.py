"""The commands and links of README.md and docs/*.md, as a new user would copy them.

What it only checks, without running them: every `mlflow run` names an entry point of MLproject
and only `-P` parameters that entry point takes (declared in MLproject, or an option of the
command it runs); every `python -m <module>` / `python main.py` command, and every other
`mlflow <command>`, names a command and options that exist; every `python <script>.py` exists;
every relative link (and its #anchor) resolves; every entry point and parameter is named on a
page; no example names a fixed model version or experiment id; the three servers the docs
start default to three different ports; the README's sample console output has a line for each
stage a first run launches.

What it runs: `python -m foodcast status` on a new store (quick; it launches nothing), `--help`
of each `python -m` / `python main.py` command named (in process, with click's test runner),
and the registry page's blocks that fetch `x_pred.csv` (`mlflow artifacts download`) and write
`body.json` from it, in a new directory against the session's small store (no pipeline run of
its own). The quickstart's pipeline on the shipped data runs once, in tests/test_pipeline.py's
`test_monday_command_on_the_shipped_data`, which also compares its output with the README's
sample; the blocks that serve a model or start the team server (PostgreSQL) are left to
tests/test_registry.py and tests/test_team_server.py.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import sys
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from conftest import PROJECT, Runner
from foodcast.pipeline.stage_table import PIPELINE
from foodcast.teamserver import server

README = PROJECT / "README.md"
DOCS = [README, *sorted((PROJECT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEREDOC = re.compile(r"<<-?'?(\w+)'?")


def blocks(path: Path, language: str | None = None) -> list[str]:
    """The fenced code blocks of ``path`` (of one language: ``bash``; ``""``: no language)."""
    return blocks_of(path.read_text(), language)


def shell_commands(block: str) -> list[list[str]]:
    """The simple commands of a shell block, as words: continuation lines joined, comments,
    here-documents (inline Python) and variable assignments left out, split at ``&&`` / ``;``."""
    commands: list[list[str]] = []
    lines = iter(block.replace("\\\n", " ").splitlines())
    for line in lines:
        heredoc = HEREDOC.search(line)
        if heredoc:  # python - <<'PY' ... PY: the Python is not a shell command
            for body in lines:
                if body.strip() == heredoc.group(1):
                    break
            continue
        if "$(" in line or line.strip() == ")":
            continue
        words: list[str] = []
        for word in [*shlex.split(line, comments=True), ";"]:
            if word in ("&&", ";", "||", "|"):
                while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
                    words.pop(0)
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(word)
    return commands


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(file, words)`` of every command in the bash blocks of the README and docs/."""
    return [(path.name, words) for path in DOCS for block in blocks(path, "bash") for words in shell_commands(block)]


def test_the_command_extraction_reads_continuations_chains_and_heredocs():
    block = (
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e .  # comment\n"
        "mlflow run . -P a=1 \\\n  -P b=2\n"
        "x=$(python - <<'PY'\nimport mlflow\nPY\n)\n"
        "FOO=1 python -m foodcast status\n"
    )
    assert shell_commands(block) == [
        ["python3", "-m", "venv", ".venv"],
        [".", ".venv/bin/activate"],
        ["pip", "install", "-e", "."],
        ["mlflow", "run", ".", "-P", "a=1", "-P", "b=2"],
        ["python", "-m", "foodcast", "status"],
    ]


def _project_on_path() -> None:
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))


def click_command(module: str) -> click.Command:
    """The click command that ``python -m <module>`` (or ``python main.py``: ``main``) runs."""
    _project_on_path()
    if module == "foodcast":
        from foodcast.cli import cli

        return cli
    loaded = importlib.import_module(module)
    found = [v for v in vars(loaded).values() if isinstance(v, click.Command)]
    assert len(found) == 1, f"{module}: {found}"
    return found[0]


def resolve(root: click.Command, args: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The subcommand ``args`` names (aliases too: ``mlflow ui``), the path to it, and the
    arguments left for it."""
    command, path = root, []
    while isinstance(command, click.Group) and args:
        sub = command.get_command(click.Context(command), args[0])
        if sub is None:
            break
        path.append(args[0])
        command, args = sub, args[1:]
    return command, path, args


def options_of(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def check_options(label: str, command: click.Command, args: list[str]) -> None:
    for arg in args:
        if arg.startswith("-") and arg != "-":
            option = arg.split("=", 1)[0]
            assert option in options_of(command), f"{label}: {command.name} has no option {option}"


def help_answers(root: click.Command, path: list[str]) -> None:
    result = CliRunner().invoke(root, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output, (path, result.output)


def test_every_python_command_names_a_command_and_options_that_exist():
    checked = 0
    for name, words in documented_commands():
        if words[0] not in ("python", "python3") or len(words) < 2:
            continue
        if words[1] == "-m":
            module, args = words[2], words[3:]
            if module in ("venv", "pip", "pytest"):
                continue
        elif words[1] in ("-c", "-"):
            continue
        elif words[1] == "main.py":
            module, args = "main", words[2:]
        else:
            assert (PROJECT / words[1]).is_file(), f"{name}: {words[1]} does not exist"
            continue
        root = click_command(module)
        command, path, rest = resolve(root, args)
        check_options(f"{name}: {shlex.join(words)}", command, rest)
        help_answers(root, path)
        checked += 1
    assert checked >= 5


def entry_points() -> dict[str, dict]:
    return yaml.safe_load((PROJECT / "MLproject").read_text())["entry_points"]


def test_every_mlflow_run_names_an_entry_point_and_parameters_it_takes():
    from mlflow.cli import cli as mlflow_cli

    points = entry_points()
    checked = set()
    for name, words in documented_commands():
        if words[:2] != ["mlflow", "run"]:
            continue
        run_command = mlflow_cli.commands["run"]
        args = words[3:]  # after the project URI
        check_options(f"{name}: {shlex.join(words)}", run_command, args)
        entry = next((args[i + 1] for i, a in enumerate(args) if a in ("-e", "--entry-point")), "main")
        assert entry in points, f"{name}: no entry point {entry} in MLproject"
        declared = set(points[entry].get("parameters") or {})
        options = (
            options_of(click_command("main" if entry == "main" else f"steps.{entry}")) if entry != "noop" else set()
        )
        for i, arg in enumerate(args):
            if arg == "-P":
                param = args[i + 1].split("=", 1)[0]
                assert param in declared or f"--{param.replace('_', '-')}" in options, (
                    f"{name}: {shlex.join(words)}: {entry} takes no parameter {param}"
                )
        checked.add(entry)
    assert {"main", "load", "features", "train", "future", "predict", "backtest"} <= checked


def test_every_other_mlflow_command_exists_with_its_options():
    from mlflow.cli import cli as mlflow_cli

    checked = 0
    for name, words in documented_commands():
        if words[0] != "mlflow" or words[1] == "run":
            continue
        command, path, rest = resolve(mlflow_cli, words[1:])
        assert path, f"{name}: no mlflow command {words[1]}"
        check_options(f"{name}: {shlex.join(words)}", command, rest)
        checked += 1
    assert checked >= 3  # mlflow ui, models serve, artifacts download, db upgrade


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of a markdown file."""
    text = FENCE.sub("", path.read_text())
    out = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_every_relative_link_and_anchor_resolves():
    checked = 0
    for path in DOCS:
        for target in LINK.findall(CODE_SPAN.sub("", FENCE.sub("", path.read_text()))):
            if re.match(r"[a-z]+:", target):
                continue
            checked += 1
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            assert linked.exists(), f"{path.name}: {target} does not exist"
            if anchor:
                assert anchor in anchors(linked), f"{path.name}: {target}: no such heading"
    assert checked >= 10  # (the README links each docs page)


def test_the_readme_links_every_docs_page():
    readme = README.read_text()
    pages = list((PROJECT / "docs").glob("*.md"))
    assert len(pages) >= 7
    for page in pages:
        assert f"(docs/{page.name})" in readme, page.name


def test_ui_serving_and_team_server_default_to_different_ports():
    text = "\n".join(p.read_text() for p in DOCS)
    served = {int(p) for p in re.findall(r"mlflow models serve [^\n`]*-p (\d+)", text)}
    assert served == {5001}
    assert server.DEFAULT_PORT not in (5000, 5001)
    team = (PROJECT / "docs" / "team-setup.md").read_text()
    assert f"else {server.DEFAULT_PORT}" in team and f"127.0.0.1:{server.DEFAULT_PORT}" in team
    assert "127.0.0.1:5000" not in team


def readme_sample() -> list[str]:
    """The README's sample of what the quickstart's pipeline prints."""
    readme = README.read_text()
    start = readme.index("## Quickstart")
    quickstart = readme[start : readme.index("\n## ", start + 1)]
    return next(b for b in blocks_of(quickstart, "") if b.startswith("main: run ")).splitlines()


def console_shape(lines: list[str]) -> list[str]:
    """What main's console lines say, in sorted order (the stages that run at once end in either
    order), without what differs between runs and machines: run and experiment ids, seconds, the
    data directory, the store's paths."""
    out = []
    for line in lines:
        line = re.sub(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{4}…", "<id>", line)
        line = re.sub(r"\b\d+\.\d+s\b", "<s>", line)
        line = re.sub(r"\S*/data is ", "<data> is ", line)
        line = re.sub(r"\S*/mlruns/\d+/", "<artifacts>/", line)
        line = re.sub(r"sqlite:///\S*mlflow\.db", "<store>", line)
        out.append(re.sub(r"/experiments/\d+/", "/experiments/<e>/", line))
    return sorted(out)


def test_the_readme_sample_output_has_a_line_for_every_stage_a_first_monday_run_launches():
    """Every stage of main but evaluate (the week before the forecast one has no forecast yet to
    score): tests/test_pipeline.py compares the whole sample with what that run prints."""
    labels = [line.split(":")[0] for line in readme_sample() if not line.startswith(" ")]
    assert sorted(set(labels) - {"main"}) == sorted(s.name for s in PIPELINE if s.name != "evaluate")


def blocks_of(text: str, language: str | None) -> list[str]:
    """The fenced code blocks of ``text`` (of one language; ``None``: all)."""
    return [body for lang, body in FENCE.findall(text) if language is None or lang == language]


def test_status_answers_on_a_new_store(tmp_path):
    """`python -m foodcast status` as the pipeline page gives it, on a new store, from the
    project directory (the shipped data): it says what main would do and launches nothing."""
    commands = [w for _, w in documented_commands() if w[:4] == ["python", "-m", "foodcast", "status"]]
    assert commands
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data_dir=None)
    runner.env.pop("FOODCAST_DATA_DIR", None)
    runner.env.pop("MLFLOW_EXPERIMENT_NAME", None)  # the default experiment, foodcast
    runner.workdir = PROJECT
    proc = runner.run(sys.executable, *commands[0][1:], timeout=120)
    assert "forecasting week 261 from weeks 240-260" in proc.stdout, proc.stdout
    assert "main would launch every stage" in proc.stdout, proc.stdout
    client = MlflowClient(uri)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_the_registry_page_fetches_x_pred_and_writes_body_json(small, tmp_path):
    """The registry page's download block (finding the latest future run) and its body.json
    line, run as they are written, in a fresh directory against the small store."""
    page = (PROJECT / "docs" / "registry.md").read_text()
    download = next(b for b in blocks_of(page, "bash") if "mlflow artifacts download" in b)
    body = next(b for b in blocks_of(page, "bash") if "body.json" in b and "json.dump" in b)
    runner = Runner(tmp_path, small.uri, data_dir=None)
    runner.run("bash", "-euc", download, timeout=300)
    assert (tmp_path / "x_pred.csv").is_file()
    body_line = next(line for line in body.splitlines() if "json.dump" in line)
    runner.run("bash", "-euc", body_line)
    sent = json.loads((tmp_path / "body.json").read_text())["dataframe_split"]
    assert len(sent["data"]) == 168 and "order_date" not in sent["columns"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_example_names_a_fixed_model_version_or_experiment_id(path):
    text = path.read_text()
    assert not re.search(r"models:/\w+/\d", text), "a models:/ URI with a fixed version"
    assert not re.search(r"set_registered_model_alias\([^)]*\"\d+\"\)", text)
    assert not re.search(r"grant_user_permission\([^)]*\"\d+\"", text)
    assert not re.search(r'"resource_id": "\d+"', text)


def test_every_stage_command_named_exists():
    """`python -m steps.<name>` for every `steps.<name>` the docs name (there is no steps.noop:
    MLproject's noop entry point runs `python -c pass`)."""
    named = set()
    for path in DOCS:
        for module in set(re.findall(r"\bsteps\.(\w+)", path.read_text())):
            assert (PROJECT / "steps" / f"{module}.py").is_file(), f"{path.name}: steps.{module}"
            named.add(module)
    assert "train" in named  # (the docs name `python -m steps.train`)


def test_every_entry_point_and_parameter_is_documented():
    """Each entry point of MLproject, and each option of main and of every stage command, is
    named (in backquotes) on a page the README links."""
    text = "\n".join(p.read_text() for p in DOCS)
    named = set(re.findall(r"`([^`\n]+)`", text))
    for entry in entry_points():
        assert entry in named, f"entry point {entry} is not documented"
        if entry == "noop":
            continue
        command = click_command("main" if entry == "main" else f"steps.{entry}")
        for param in command.params:
            if param.name and param.name != "help" and isinstance(param, click.Option):
                assert param.name in named, f"{entry}: parameter {param.name} is not documented"


def test_the_registry_page_moves_the_champion_to_the_challenger_s_version(tmp_path):
    """The registry page's promote-by-hand block, run as written on a new store whose model
    `foodcast` has three versions, challenger on version 2 and champion on 3: it lists them and
    points the champion at version 2, whatever the numbers."""
    page = (PROJECT / "docs" / "registry.md").read_text()
    block = next(b for b in blocks_of(page, "bash") if "set_registered_model_alias" in b)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.create_registered_model("foodcast")
    for week in (198, 199, 200):
        client.create_model_version("foodcast", str(tmp_path), tags={"weeks": f"{week - 20}-{week}"})
    client.set_registered_model_alias("foodcast", "challenger", "2")
    client.set_registered_model_alias("foodcast", "champion", "3")
    proc = Runner(tmp_path, uri, data_dir=None).run("bash", "-euc", block, timeout=120)
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["3", "2", "1"], proc.stdout
    assert str(client.get_model_version_by_alias("foodcast", "champion").version) == "2"
