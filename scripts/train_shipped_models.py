#!/usr/bin/env python
"""Train the models that ship in resources/models (rerunnable, fixed seeds).

    python scripts/train_shipped_models.py --data /work/shared/data/chest_xray/train \
        --out resources/models/pneumonia-cnn --minutes 55
    python scripts/train_shipped_models.py --task segmentation --data /work/shared/data/hippocampus --minutes 55
    python scripts/train_shipped_models.py --task anomaly --data /work/shared/data/chest_xray/train
    python scripts/train_shipped_models.py --task radiomics --data /work/shared/data/chest_xray/train
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=("classification", "segmentation", "anomaly", "radiomics"), default="classification")
    p.add_argument("--data", required=True, help="classification: one subfolder per class (NORMAL, PNEUMONIA); "
                                                 "segmentation: imagesTr/ + labelsTr/ (MSD layout)")
    p.add_argument("--out", default=None, help="model folder to write (default resources/models/"
                                               "pneumonia-cnn or hippocampus-unet)")
    p.add_argument("--minutes", type=float, default=None, help="time budget for the whole run")
    p.add_argument("--image-size", type=int, default=224, help="classification: the side the X-rays are resized to "
                                                                "(224: the resolution of the shared data)")
    p.add_argument("--size", type=int, nargs=3, default=[48, 64, 48], help="segmentation: z y x (multiples of 16)")
    p.add_argument("--epochs", type=int, default=None, help="default 40 (classification), 300 (segmentation)")
    p.add_argument("--batch-size", type=int, default=None, help="default 32 (classification), 4 (segmentation)")
    p.add_argument("--lr", type=float, default=None, help="default 1e-3 (classification), 3e-3 (segmentation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=None, help="default 10 (classification), 40 (segmentation)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt (written after "
                                                         "every epoch) instead of starting again")
    p.add_argument("--method", default="one_class_svm", choices=("one_class_svm", "isolation_forest"),
                   help="anomaly: the detector")
    p.add_argument("--limit", type=int, default=None, help="anomaly: NORMAL images to fit on (default 1000); "
                                                           "radiomics: training images per class (default all)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    command = "python scripts/train_shipped_models.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.task == "radiomics":
        from medviewer.ai.training.radiomics_models import train_image_classifiers

        saved = train_image_classifiers(args.data, args.out or "resources/models", seed=args.seed,
                                        limit_per_class=args.limit, image_size=args.image_size,
                                        progress=lambda s: print(s, flush=True))
        print(saved)
        return 0
    if args.task == "anomaly":
        from medviewer.ai.training.anomaly import train_anomaly

        metrics = train_anomaly(args.data, args.out or "resources/models/cxr-anomaly", method=args.method,
                                limit=args.limit or 1000, val_limit=300, seed=args.seed, command=command,
                                progress=lambda s: print(s, flush=True))
        print(metrics)
        return 0
    if args.task == "segmentation":
        from medviewer.ai.training.segmentation import train_segmentation

        metrics = train_segmentation(args.data, args.out or "resources/models/hippocampus-unet",
                                     size=tuple(args.size), epochs=args.epochs or 300,
                                     batch_size=args.batch_size or 4, lr=args.lr or 3e-3, seed=args.seed,
                                     patience=args.patience or 40, minutes=args.minutes, command=command,
                                     resume=args.resume, progress=lambda s: print(s, flush=True))
        print({k: metrics[k] for k in ("n_train", "n_val", "n_test", "epochs", "train_seconds")},
              "test mean Dice", metrics["test"]["mean_dice"])
        return 0
    from medviewer.ai.training import train_classification

    if args.out is None:
        args.out = "resources/models/pneumonia-cnn"
    args.epochs = 40 if args.epochs is None else args.epochs
    args.batch_size = 32 if args.batch_size is None else args.batch_size
    args.lr = 1e-3 if args.lr is None else args.lr
    args.patience = 10 if args.patience is None else args.patience
    metrics = train_classification(args.data, args.out, image_size=args.image_size, epochs=args.epochs,
                                   batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                   max_minutes=args.minutes, patience=args.patience, command=command,
                                   resume=args.resume, progress=lambda s: print(s, flush=True))
    print({k: metrics[k] for k in ("n_train", "n_val", "n_test", "epochs_run", "train_seconds")},
          "test", {k: metrics["test"][k] for k in ("roc_auc", "accuracy", "ece")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
