"""MODEL_CARD.md of a model folder, written from its manifest (so the card and the manifest
cannot disagree): what the model is for, the data and the split, every figure with its 95%
interval and the split it was measured on, the threshold and its rule, calibration (ECE), the
out-of-distribution check, test-time augmentation, size and training time.

    python -m medviewer.ai.training.model_card resources/models/pneumonia-cnn [...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

NOT_CLINICAL = "Research and demonstration only. Not a medical device; not for clinical use."


def _fig(entry) -> str:
    if isinstance(entry, dict) and "value" in entry:
        lo, hi = entry.get("ci95", [None, None])
        return f"{entry['value']:.3f} ({lo:.3f}–{hi:.3f})" if lo is not None else f"{entry['value']:.3f}"
    return "—" if entry is None else (f"{entry:.3f}" if isinstance(entry, float) else str(entry))


def _size(folder: Path, manifest: dict) -> str:
    files = [manifest.get("weights")] + [manifest.get(k, {}).get("file") for k in ("torchscript", "onnx", "ood")]
    parts = [f"{f} {(folder / f).stat().st_size / 1e6:.2f} MB" for f in files if f and (folder / f).is_file()]
    return ", ".join(parts) or "—"


def _classification(m: dict) -> list[str]:
    rows = ["| split | n | ROC AUC | accuracy | sensitivity | specificity | balanced accuracy | ECE |",
            "|---|---|---|---|---|---|---|---|"]
    notes = []
    for split in ("validation", "test"):
        s = m.get(split)
        if not isinstance(s, dict):
            continue
        rows.append(f"| {split} | {s.get('n', '—')} | {_fig(s.get('roc_auc'))} | {_fig(s.get('accuracy'))} | "
                    f"{_fig(s.get('sensitivity'))} | {_fig(s.get('specificity'))} | "
                    f"{_fig(s.get('balanced_accuracy'))} | {_fig(s.get('ece'))} |")
        notes.append(f"- **{split}**: {s.get('measured_on', '')}")
    return rows + [""] + notes


def _segmentation(m: dict, labels: dict) -> list[str]:
    rows = ["| split | label | Dice | HD95 (mm) | precision | recall | F1 |", "|---|---|---|---|---|---|---|"]
    notes = []
    for split in ("validation", "test"):
        s = m.get(split)
        if not isinstance(s, dict):
            continue
        for lab, r in s.get("per_label", {}).items():
            name = labels.get(lab, {}).get("name", lab) if isinstance(labels.get(lab), dict) else labels.get(lab, lab)
            rows.append(f"| {split} ({s.get('n_cases', '—')} cases) | {name} | {_fig(r.get('dice'))} | "
                        f"{_fig(r.get('hd95_mm'))} | {_fig(r.get('precision'))} | {_fig(r.get('recall'))} | "
                        f"{_fig(r.get('f1'))} |")
        rows.append(f"| {split} | **mean Dice** | **{_fig(s.get('mean_dice'))}** | | | | |")
        notes.append(f"- **{split}**: {s.get('measured_on', '')}")
    return rows + [""] + notes


def card_text(folder: Path) -> str:
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    m, tr = man.get("metrics", {}), man.get("training", {})
    lines = [f"# Model card: {man['name']} {man.get('version', '')}".rstrip(), "", man.get("description", ""), "",
             f"**{NOT_CLINICAL}**", "", "## Data and split",
             f"- Data: {tr.get('data') or tr.get('source', '—')} — licence {tr.get('data_licence') or tr.get('licence', '—')}",
             f"- Split: {tr.get('split', '—')}",
             f"- Cases: {m.get('n_train', m.get('n_examples', '—'))} training, {m.get('n_val', '—')} validation, "
             f"{m.get('n_test', '—')} test", "",
             "## Figures (95% bootstrap intervals in brackets)", ""]
    if man.get("task") == "segmentation":
        lines += _segmentation(m, man.get("outputs", {}).get("labels", {}))
    else:
        lines += _classification(m)
    if m.get("independent"):
        lines += ["", "Independent test (measured outside this repository):", ""] + [f"- {k}: {v}" for k, v in m["independent"].items()]
    lines += ["", "## Operating point, calibration and trust"]
    if "decision" in man:
        d = man["decision"]
        lines.append(f"- Threshold **{d['threshold']}** on the calibrated probability of {d.get('positive_class')}: {d.get('rule')}")
    if "calibration" in man:
        c = man["calibration"]
        t = f" T = {c['temperature']}" if "temperature" in c else ""
        lines.append(f"- Calibration: {c.get('method')}{t}, fitted on {c.get('fitted_on')}; "
                     + "; ".join(f"ECE {split} {m[split]['ece']}" + (f" (before calibration {m[split]['ece_before_calibration']})"
                                                                    if "ece_before_calibration" in m[split] else "")
                                 for split in ("validation", "test") if isinstance(m.get(split), dict) and "ece" in m[split])
                     + " — reliability diagram: reliability.png")
    if "ood" in man:
        o = man["ood"]
        lines.append(f"- Out-of-distribution check: {o['method']}; {o['rule']} (threshold {o['threshold']})")
    if "test_time_augmentation" in man:
        lines.append(f"- Test-time augmentation: {man['test_time_augmentation'].get('description')}")
    if "explanations" in man:
        lines += ["", "## Explanation scores", ""] + [f"- {k}: {v}" for k, v in man["explanations"].items()]
    net = man.get("network", {})
    lines += ["", "## Model and training"]
    if "network" in man:
        lines += [f"- Network: {net.get('class')} {json.dumps(net.get('args', {}))}",
                  f"- Files: {_size(folder, man)}",
                  f"- Epochs: {m.get('epochs_run', m.get('epochs', '—'))} run, best {m.get('best_epoch', '—')}; "
                  f"stopped: {m.get('stopped', '—')}"]
    else:  # a classical (scikit-learn) model
        lines += [f"- Estimator: {man.get('framework', '—')} {man.get('estimator', '')} "
                  f"{json.dumps(m.get('best_params', {}))}, chosen by a grid search with {m.get('folds', '—')}-fold "
                  f"cross-validation on the training side (cross-validated ROC AUC {m.get('cv_roc_auc', '—')})",
                  f"- Files: {_size(folder, man)}"]
    lines += [
              f"- Training time: {m.get('train_seconds', tr.get('seconds', '—'))} s on CPU"
              + (f" (threads: {tr['software'].get('threads')})" if isinstance(tr.get("software"), dict) else "")
              + (f"; {tr['legs']}" if tr.get("legs") else ""),
              f"- Command: `{tr.get('command', '—')}`",
              f"- Licence: {man.get('licence', '—')}", ""]
    return "\n".join(lines)


def write_model_card(folder: str | Path) -> Path:
    folder = Path(folder)
    out = folder / "MODEL_CARD.md"
    out.write_text(card_text(folder), encoding="utf-8")
    return out


if __name__ == "__main__":
    for f in sys.argv[1:]:
        print(write_model_card(f))
