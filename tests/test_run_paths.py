"""The names of a run directory's files are spelled in one place, speechprune/model/run_dir.py:
no other module of speechprune/ or scripts/ holds a string literal equal to one of
`RUN_LAYOUT_NAMES` ("metrics.json", "checkpoints", "checkpoints/best.pt", ...); they use
`RunDirectory` or the module's constants instead.

Every file is parsed with `ast`, so every literal counts wherever it stands (an argument, a
default, a dict key, a piece of an f-string) and nothing is imported. Prose that mentions a name
inside a longer string (a docstring, an error message) is not a literal equal to it.

Seen to fail: `path = Path(baseline_dir) / "metrics.json"` put back into
speechprune/training/dashboard_layout.py failed
test_no_module_but_run_dir_spells_a_run_directory_name, naming that file, line and literal.
"""

from __future__ import annotations

import ast
from pathlib import Path

from speechprune.model import run_dir
from speechprune.model.run_dir import RUN_LAYOUT_NAMES

REPO = Path(__file__).resolve().parents[1]
OWNER = Path(run_dir.__file__).resolve()


def layout_literals(path: Path) -> list[str]:
    """`line: literal` for each string constant in `path` equal to a run-layout name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in RUN_LAYOUT_NAMES]


def sources() -> list[Path]:
    return sorted(path for folder in ("speechprune", "scripts")
                  for path in (REPO / folder).rglob("*.py") if path.resolve() != OWNER)


def test_the_layout_names_are_the_run_directory_files():
    # The names the walk looks for: what RunDirectory hands out, not a list kept apart from it.
    run = run_dir.RunDirectory(Path("run"))
    for path in (run.config_file, run.metrics_file, run.lock_file, run.log_file,
                 run.checkpoints, run.tensorboard, run.evaluation,
                 run.last_checkpoint, run.best_checkpoint):
        assert path.relative_to(run.path).name in RUN_LAYOUT_NAMES
    assert str(run.best_checkpoint.relative_to(run.path)) in RUN_LAYOUT_NAMES
    assert {"metrics.json", "config.yaml", "checkpoints", "tensorboard", "evaluation",
            "best.pt", "last.pt"} <= set(RUN_LAYOUT_NAMES)


def test_the_walk_sees_a_literal_wherever_it_stands(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('from pathlib import Path\n'
                      'def f(run, name="best.pt"):\n'
                      '    """Reads metrics.json."""\n'
                      '    return {"tensorboard": run / "checkpoints" / f"{name}"}\n')
    assert layout_literals(sample) == ["2: 'best.pt'", "4: 'tensorboard'", "4: 'checkpoints'"]


def test_no_module_but_run_dir_spells_a_run_directory_name():
    assert len(sources()) > 50  # the walk reaches the package and the scripts
    spelled = {str(path.relative_to(REPO)): found for path in sources()
               if (found := layout_literals(path))}
    assert not spelled, ("run-directory names spelled outside speechprune/model/run_dir.py "
                         f"(use RunDirectory or its constants): {spelled}")
