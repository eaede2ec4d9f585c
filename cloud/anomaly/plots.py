"""PNG plots for the training report: precision/recall/F1 per fault type, and examples of each fault as scored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cloud.anomaly.data import CLEAN, Record
from cloud.anomaly.train import Evaluation, predicted_fault
from edge.sim.faults import FAMILY_QUANTITY
from flurfunk.contracts import Reading


def write_plots(evaluation: Evaluation, scored: Sequence[tuple[Record, Reading]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    types = sorted(evaluation.per_type)
    figure, axes = plt.subplots(figsize=(9, 4))
    for offset, metric in enumerate(("precision", "recall", "f1")):
        axes.bar([i + 0.27 * (offset - 1) for i in range(len(types))],
                 [evaluation.per_type[t][metric] for t in types], width=0.27, label=metric)  # fmt: skip
    axes.axhline(0.9, color="black", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(types)), types, rotation=20)
    axes.set_ylim(0, 1.05)
    axes.set_title(f"Held-out metrics per fault type (clean readings flagged: {evaluation.clean_flag_rate:.2%})")
    axes.legend(loc="lower right")
    figure.tight_layout()
    written.append(out / "metrics.png")
    figure.savefig(written[-1], dpi=100)
    plt.close(figure)

    by_device: dict[str, list[tuple[Record, Reading]]] = {}
    for record, reading in scored:
        by_device.setdefault(record.dev_eui, []).append((record, reading))
    examples = []
    for fault in types:
        for rows in by_device.values():
            hits = [i for i, (record, _) in enumerate(rows) if record.label == fault]
            if hits:
                examples.append((fault, rows[max(0, hits[0] - 36) : hits[0] + 60]))
                break
    if examples:
        figure, grid = plt.subplots(len(examples), 1, figsize=(9, 2.2 * len(examples)), squeeze=False)
        for axes, (fault, rows) in zip(grid[:, 0], examples, strict=True):
            quantity = FAMILY_QUANTITY[rows[0][0].family]
            values = [record.values[quantity] for record, _ in rows]
            axes.plot(values, color="grey", linewidth=1)
            truth = [i for i, (record, _) in enumerate(rows) if record.label != CLEAN]
            flagged = [i for i, (_, reading) in enumerate(rows) if predicted_fault(reading) != CLEAN]
            axes.scatter(truth, [values[i] for i in truth], s=30, facecolors="none", edgecolors="red", label="fault")
            axes.scatter(flagged, [values[i] for i in flagged], s=8, color="black", label="flagged")
            axes.set_title(f"{fault} ({rows[0][0].family}, {quantity.value})", fontsize=9)
            axes.legend(fontsize=7, loc="upper right")
        figure.tight_layout()
        written.append(out / "examples.png")
        figure.savefig(written[-1], dpi=90)
        plt.close(figure)
    return written
