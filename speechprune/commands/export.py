"""`speechprune export <run dir or checkpoint> out=<file> [values=int8|fp16] [layout=auto]
[format=onnx]`.

Writes the compact deployable model (speechprune/deploy/export.py), or with format=onnx the
dense-stored ONNX graph (speechprune/deploy/onnx_export.py), and prints its size against the
dense float32 model and the checkpoint file."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR, one_line_errors
from speechprune.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def run(cfg: DictConfig) -> None:
    from speechprune.config_paths import absolute
    from speechprune.deploy.export import ExportError, export_checkpoint
    from speechprune.model.checkpoint import CheckpointError

    with one_line_errors("export", ExportError, CheckpointError):
        if cfg.format == "onnx":
            from speechprune.deploy.onnx_export import export_onnx

            summary = export_onnx(absolute(cfg.source), absolute(cfg.out), which=cfg.which)
        elif cfg.format == "speechprune":
            summary = export_checkpoint(absolute(cfg.source), absolute(cfg.out),
                                        layout=cfg.layout, values=cfg["values"],
                                        sparse_min_sparsity=cfg.sparse_min_sparsity,
                                        which=cfg.which)
        else:
            raise ExportError(f"format must be 'speechprune' or 'onnx', got {cfg.format!r}")
    print(summary.describe())


def main() -> None:
    """A first positional argument without `=` is the model: it becomes `source=<it>`."""
    args = sys.argv[1:]
    if args and "=" not in args[0] and not args[0].startswith("-"):
        args = [f"source={args[0]}"] + args[1:]
    sys.argv = sys.argv[:1] + args
    run()
