"""Defaults live only in the typed schema (speechprune/config.py): every YAML file under conf/
that maps onto a schema node holds only what differs from what the composition gives without it.

Each such file is composed twice, as the command that uses it would: as it is, and with its
leaves stripped (its mappings, `defaults` list and `hydra` settings kept). A leaf whose value
is the same in both is redundant. For a config group option (conf/<group>/<option>.yaml,
package = the group) that value is the schema's default at that path; an entry of a
dict-valued node (pruning.groups.<name>) gets its value dataclass's defaults, since the kept
mapping still creates it. For a `# @package _global_` preset (conf/experiment/**,
conf/hparams_search/) it is what the rest of the composition gives: the groups it selects and
the presets it extends.

Seen to fail: re-adding `freq: 100` under conf/pruning/narang.yaml's recurrent group
("conf/pruning/narang.yaml: groups.recurrent.freq = 100 (already the schema's default ...")
and `conv_layers: 2` under conf/experiment/quickstart.yaml's model ("model.conv_layers = 2").
The preset parts of table3 (common, sparse) are checked in every preset that extends them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, ListConfig, OmegaConf

from training_helpers import REPO

from speechprune.config import register_configs
from speechprune.pruning import register_method_configs

CONF = REPO / "conf"
# Hydra's own settings (logging, launcher): no schema node behind them.
NOT_SCHEMA = {"hydra"}
# Shared parts of the Table 3 presets, composable only through the presets that extend them (as in
# tests/training/test_presets.py).
PARTS = {"experiment/table3/common", "experiment/table3/sparse"}
# Keys of a config file that are not config values.
NOT_VALUES = {"defaults", "hydra"}
_ABSENT = object()


def group_selections(command: Path) -> set[str]:
    """The config groups a command's primary config selects in its defaults list."""
    groups = set()
    for entry in OmegaConf.load(command).get("defaults", []):
        if isinstance(entry, (dict, DictConfig)):
            groups.update(key for key in entry if " " not in key and "/" not in key)
    return groups


COMMANDS = sorted(path.stem for path in CONF.glob("*.yaml"))


def group_commands() -> dict[str, str]:
    """Each config group -> the first command (in name order) whose config selects it."""
    commands: dict[str, str] = {}
    for command in COMMANDS:
        for group in group_selections(CONF / f"{command}.yaml"):
            commands.setdefault(group, command)
    return commands


GROUP_COMMAND = group_commands()
GROUP_FILES = sorted(path.relative_to(CONF).as_posix() for path in CONF.glob("*/**/*.yaml")
                     if path.relative_to(CONF).parts[0] not in NOT_SCHEMA)


def usage(file: str, conf_dir: Path = CONF) -> tuple[str, list[str], str]:
    """(command, overrides, package) that compose `file` (relative to conf_dir) on its own."""
    path = Path(file)
    if len(path.parts) == 1:
        return path.stem, [], ""
    group = path.parts[0]
    option = path.relative_to(group).with_suffix("").as_posix()
    global_package = "# @package _global_" in (conf_dir / file).read_text()
    return GROUP_COMMAND[group], [f"{group}={option}"], "" if global_package else group


def extended(file: str, group: str, conf_dir: Path) -> set[str]:
    """The config files that `file`, loaded in config group `group`, extends through its
    defaults list (`- quickstart`), transitively. Hydra reads such a name relative to the group
    the including file was loaded in."""
    found = set()
    for entry in OmegaConf.load(conf_dir / file).get("defaults", []):
        path = f"{group}/{entry}.yaml"
        if isinstance(entry, str) and (conf_dir / path).is_file():
            found |= {path} | extended(path, str(Path(path).parent), conf_dir)
    return found


def is_part(file: str) -> bool:
    return Path(file).with_suffix("").as_posix() in PARTS


def compositions(file: str, conf_dir: Path) -> list[tuple[str, list[str], str]]:
    """(command, overrides, package) of every composition `file` takes part in: its own
    (unless it is a part) and those of the options of its group that extend it."""
    uses = [] if is_part(file) else [usage(file, conf_dir)]
    if len(Path(file).parts) == 1:
        return uses
    group = Path(file).parts[0]
    package = usage(file, conf_dir)[2]
    for path in sorted((conf_dir / group).rglob("*.yaml")):
        other = path.relative_to(conf_dir).as_posix()
        if not is_part(other) and file in extended(other, group, conf_dir):
            command, overrides, _ = usage(other, conf_dir)
            uses.append((command, overrides, package))
    return uses


def leaves(node, prefix: str = ""):
    """(dotted key, value) of every leaf: scalars, lists and empty mappings."""
    for key, value in node.items():
        if not prefix and key in NOT_VALUES:
            continue
        if isinstance(value, DictConfig) and len(value):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def without_leaves(node: DictConfig, top: bool = True) -> dict:
    """The mappings of a config file with every leaf removed (`defaults` and `hydra` kept): a
    kept mapping still creates its entry of a dict-valued node, with the schema's defaults."""
    kept = {}
    for key, value in node.items():
        if top and key in NOT_VALUES:
            kept[key] = OmegaConf.to_container(value)
        elif isinstance(value, DictConfig) and len(value):
            kept[key] = without_leaves(value, top=False)
    return kept


def compose_in(conf_dir: Path, command: str, overrides: list[str]):
    register_configs()
    register_method_configs()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose(config_name=command, overrides=overrides)


def value_at(cfg, key: str):
    value = OmegaConf.select(cfg, key, default=_ABSENT)
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value)
    return value


def redundant_leaves(conf_dir: Path, file: str, scratch: Path) -> list[str]:
    """`key = value` of each leaf of conf_dir/file that every composition it takes part in
    gives without it."""
    stripped_dir = scratch / "conf"
    shutil.copytree(conf_dir, stripped_dir)
    original = (conf_dir / file).read_text()
    header = "".join(line + "\n" for line in original.splitlines() if line.startswith("# @package"))
    stripped = OmegaConf.create(without_leaves(OmegaConf.load(conf_dir / file)))
    (stripped_dir / file).write_text(header + OmegaConf.to_yaml(stripped))
    uses = compositions(file, conf_dir)
    assert uses, f"conf/{file} takes part in no composition"
    keys = [key for key, _ in leaves(OmegaConf.load(conf_dir / file))]
    redundant = dict.fromkeys(keys, True)
    shown = {}
    for command, overrides, package in uses:
        with_file = compose_in(conf_dir, command, overrides)
        without_file = compose_in(stripped_dir, command, overrides)
        for key in keys:
            full_key = f"{package}.{key}" if package else key
            shown.setdefault(key, value_at(with_file, full_key))
            redundant[key] &= value_at(with_file, full_key) == value_at(without_file, full_key)
    return [f"{key} = {shown[key]!r}" for key in keys if redundant[key]]


def test_every_schema_file_is_checked_with_the_command_that_composes_it():
    groups = {Path(file).parts[0] for file in GROUP_FILES}
    assert groups <= set(GROUP_COMMAND), f"groups no command selects: {groups - set(GROUP_COMMAND)}"
    assert {"pruning/narang.yaml", "experiment/table3/sparse.yaml", "decoder/greedy.yaml"} <= set(
        GROUP_FILES)
    assert usage("pruning/narang.yaml") == ("train", ["pruning=narang"], "pruning")
    assert usage("experiment/quickstart.yaml") == ("train", ["experiment=quickstart"], "")
    assert usage("corpus/tiny.yaml") == ("data_build", ["corpus=tiny"], "corpus")
    assert usage("decoder/beam.yaml") == ("evaluate", ["decoder=beam"], "decoder")
    assert compositions("experiment/table3/sparse.yaml", CONF) == [
        ("train", [f"experiment=table3/{name}"], "") for name in
        ("bigru_sparse", "bigru_sparse_medium", "birnn_sparse", "birnn_sparse_big",
         "birnn_sparse_medium")]
    assert ("train", ["experiment=quickstart_long_block"], "") in compositions(
        "experiment/quickstart.yaml", CONF)


@pytest.mark.parametrize("file", [f"{command}.yaml" for command in COMMANDS] + GROUP_FILES)
def test_no_yaml_leaf_restates_what_the_composition_gives_without_it(file, tmp_path):
    found = redundant_leaves(CONF, file, tmp_path)
    assert not found, f"conf/{file}: " + "; ".join(found) + " (already the schema's default or " \
        "given by the rest of the composition: remove it)"


@pytest.mark.parametrize("file, text, key", [
    ("pruning/narang.yaml", "defaults:\n  - narang_schema\n  - _self_\ngroups:\n  recurrent:\n    patterns: ['*weight_hh*']\n"
     "    freq: 100\n", "groups.recurrent.freq = 100"),
    ("model/bigru.yaml", "name: bigru\n", "name = 'bigru'"),
    ("experiment/quickstart_long.yaml", "# @package _global_\ndefaults:\n  - quickstart\n"
     "trainer:\n  epochs: 12\n", "trainer.epochs = 12"),
    ("experiment/table3/sparse.yaml", "# @package _global_\ndefaults:\n  - common\n"
     "  - override /pruning: narang\npruning:\n  groups:\n    fc: {freq: 10, end_itr: 50%}\n",
     "pruning.groups.fc.end_itr = '50%'"),
])
def test_a_restated_default_is_found_and_named(file, text, key, tmp_path):
    conf_dir = tmp_path / "conf"
    shutil.copytree(CONF, conf_dir)
    (conf_dir / file).write_text(text)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert redundant_leaves(conf_dir, file, scratch) == [key]
