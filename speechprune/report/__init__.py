"""Reports across training runs: tables, plots and fits of size against error rate. (The
TensorBoard layout every run is written with is speechprune/training/dashboard_layout.py:
training writes it, and training does not import reports.)

    runs.py      collect run directories (config.yaml, metrics.json, event files)
    table.py     one row per run, relative to the dense baseline; Markdown and CSV
    fit.py       a power law between non-zero parameters and WER, per model family
    plots.py     the frontier, pruning curves, predicted vs achieved sparsity (PNG)
    objective.py the value a Hydra sweeper minimizes
"""
