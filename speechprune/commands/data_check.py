"""`speechprune data check manifest=<path> [format=...] [text.*=...]`: validate a manifest.

Prints every problem as `<file>:<line>: <kind>: <message>`, then a summary; exits with status 1
when any problem was found, 0 when the manifest is clean.
"""

from __future__ import annotations

import sys

import hydra

from speechprune.commands import CONF_DIR
from speechprune.config import DataCheckConfig, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="data_check")
def main(cfg: DataCheckConfig) -> None:
    from omegaconf import OmegaConf

    from speechprune.data.check import check_manifest
    from speechprune.data.manifest import ManifestError

    if OmegaConf.is_missing(cfg, "manifest"):
        print("speechprune data check: name the manifest to check: "
              "speechprune data check manifest=<file.jsonl|file.csv|file.tsv|LibriSpeech dir>",
              file=sys.stderr)
        sys.exit(2)
    try:
        report = check_manifest(cfg.manifest, cfg)
    except (ManifestError, ValueError) as error:
        # The manifest itself (or a setting) is broken: nothing can be checked line by line.
        print(f"{error}", flush=True)
        print("manifest could not be read: 0 utterances checked", flush=True)
        sys.exit(1)
    for problem in report.problems:
        print(problem)
    print(report.summary(), flush=True)
    sys.exit(1 if report.problems else 0)
