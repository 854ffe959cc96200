"""Evaluation you can trust: the reference baseline and our heads in the same grouped CV run.

Every head is scored with the same ``StratifiedGroupKFold`` splits as the reference baseline (word+char
TF-IDF, LinearSVC, balanced classes, no normalisation), so each improvement is a ratio measured in
one run. The ablation switches each preprocessing step off (or on) in turn and records the change.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from classifier.dataset import data_files
from classifier.pipeline import HEADS, HeadConfig, baseline_config
from classifier.training import HeadData, Progress, cross_validate, default_configs, load_head_data

# Normaliser switches the ablation flips, one at a time, starting from the head's configuration.
ABLATION_STEPS = (
    "markers", "keep_handles", "lexicon", "kupang", "repeats", "numbers", "stopwords", "stem", "punctuation",
)


def save_confusion_png(report: dict[str, Any], title: str, path: Path) -> None:
    """Write a confusion matrix (rows: truth, columns: prediction) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = report["labels"]
    matrix = np.asarray(report["confusion"])
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\nmacro-F1 {report['macro_f1']:.3f}, accuracy {report['accuracy']:.3f}", fontsize=9)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j]:
                colour = "white" if matrix[i, j] > threshold else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def compare_with_baseline(
    *,
    data_dir: Path,
    configs: dict[str, HeadConfig] | None = None,
    heads: tuple[str, ...] = HEADS,
    folds: int = 5,
    output_dir: Path | None = None,
    progress: Progress | None = None,
    data: dict[str, HeadData] | None = None,
    seeds: tuple[int, ...] = (0,),
    version: str | None = None,
) -> dict[str, Any]:
    """Per head: the baseline's and our CV metrics on identical splits, and their ratio.

    ``version`` names the model whose configuration ``configs`` is, for the report (the promotion
    guard trusts a report in a version's ``evaluation/`` folder only if its configs match that card).

    With several ``seeds`` the whole grouped CV is repeated with differently shuffled folds (the
    baseline on the same splits each time): on classes of 6-16 rows one shuffle moves macro-F1 by
    ±0.01, so differences smaller than that need the mean over seeds. ``baseline``/``model`` keep the
    first seed's full report (and confusion matrices); ``repeated`` holds every seed's macro-F1, the
    means and the ratio of the means.
    """
    configs = configs or default_configs()
    data = data or load_head_data(Path(data_dir), configs=configs)
    baseline_data = load_head_data(Path(data_dir))  # the baseline never sees auxiliary rows
    seeds = tuple(seeds) or (0,)
    report: dict[str, Any] = {
        "version": version,
        "folds": folds,
        "seeds": list(seeds),
        "data": {"dir": str(data_dir), "files_sha256": data_files(Path(data_dir))},
        "heads": {},
    }
    for head in heads:
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "model": []}
        for seed in seeds:
            suffix = f" (seed {seed})" if len(seeds) > 1 else ""
            runs["baseline"].append(cross_validate(baseline_config(), baseline_data[head], folds=folds, seed=seed,
                                                   progress=progress, description=f"baseline {head}{suffix}"))
            runs["model"].append(cross_validate(configs[head], data[head], folds=folds, seed=seed,
                                                progress=progress, description=f"model {head}{suffix}"))
        base, ours = runs["baseline"][0], runs["model"][0]
        report["heads"][head] = {
            "baseline": base,
            "model": ours,
            "macro_f1_ratio": round(ours["macro_f1"] / base["macro_f1"], 4) if base["macro_f1"] else None,
            "config": configs[head].to_dict(),
        }
        if len(seeds) > 1:
            by_seed = {name: [r["macro_f1"] for r in rows] for name, rows in runs.items()}
            means = {name: round(float(np.mean(values)), 4) for name, values in by_seed.items()}
            report["heads"][head]["repeated"] = {
                "baseline_macro_f1": by_seed["baseline"],
                "model_macro_f1": by_seed["model"],
                "baseline_mean": means["baseline"],
                "model_mean": means["model"],
                "ratio_of_means": round(means["model"] / means["baseline"], 4) if means["baseline"] else None,
            }
        if output_dir is not None:
            save_confusion_png(ours, f"{head}: model (grouped {folds}-fold CV)", Path(output_dir) / f"confusion_{head}.png")
            save_confusion_png(base, f"{head}: reference baseline", Path(output_dir) / f"confusion_{head}_baseline.png")
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def ablation(
    *,
    data_dir: Path,
    configs: dict[str, HeadConfig] | None = None,
    heads: tuple[str, ...] = HEADS,
    steps: tuple[str, ...] = ABLATION_STEPS,
    folds: int = 5,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Per head and step: CV macro-F1 with the step flipped, against the head's configuration."""
    configs = configs or default_configs()
    data = load_head_data(Path(data_dir), configs=configs)
    result: dict[str, Any] = {}
    for head in heads:
        config = configs[head]
        reference = cross_validate(config, data[head], folds=folds, progress=progress, description=f"{head} as configured")
        rows: dict[str, Any] = {"configured": reference["macro_f1"]}
        for step in steps:
            normalizer = dict(config.normalizer or {})
            current = normalizer.get(step, _default_switch(step))
            normalizer[step] = not current
            flipped = dataclasses.replace(config, normalizer=normalizer)
            metrics = cross_validate(flipped, data[head], folds=folds, progress=progress, description=f"{head} {step}")
            rows[f"{step}={'on' if not current else 'off'}"] = {
                "macro_f1": metrics["macro_f1"],
                "delta": round(metrics["macro_f1"] - reference["macro_f1"], 4),
            }
        result[head] = rows
    return result


def _default_switch(step: str) -> bool:
    from classifier.normalize import TextNormalizer

    return bool(TextNormalizer().get_params()[step])
