"""The pruning methods, one module each, registered by name (`pruning=<name>`).

Every module here defines a `Pruner` subclass (how one group's masks change at step `itr`) and
its typed config (a `PruningConfig` subclass holding only the keys the method reads), and
registers the class with `@register_method`. Importing this package imports every module in it
(pkgutil), so the registry `speechprune.pruning.pruner.METHODS` and Hydra's ConfigStore
(`pruning/<name>_schema`) know every method.

Adding a method is one new file plus one config file:
  1. speechprune/pruning/methods/<name>.py: `@register_method class MyPruner(Pruner)` with
     `name = "<name>"`, `config_class`, `schedule_keys` and `update_group` (see oneshot.py, the
     shortest).
  2. conf/pruning/<name>.yaml: `defaults: [<name>_schema, _self_]` and its groups.

- narang: Narang et al. 2017, |w| <= a rising threshold (two slopes) is pruned.
- block:  Narang et al. 2017b, whole blocks whose largest |w| <= the same threshold.
- gradual: Zhu & Gupta 2017, the smallest |w| up to a cubic sparsity curve.
- oneshot: Han et al. 2015 / "hard pruning", the smallest |w| up to the target, once.
- l1: an L1 penalty during training, then the one-shot cut.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
