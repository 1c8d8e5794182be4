#!/usr/bin/env python
"""Train the models that ship in resources/models (rerunnable, fixed seeds).

    python scripts/train_shipped_models.py --data /work/shared/data/chest_xray/train \
        --out resources/models/pneumonia-cnn --minutes 20
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder with one subfolder per class (NORMAL, PNEUMONIA)")
    p.add_argument("--out", default="resources/models/pneumonia-cnn", help="model folder to write")
    p.add_argument("--minutes", type=float, default=None, help="time budget for the whole run")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from medviewer.ai.training import train_classification

    command = "python scripts/train_shipped_models.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    metrics = train_classification(args.data, args.out, image_size=args.image_size, epochs=args.epochs,
                                   batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                   max_minutes=args.minutes, patience=args.patience, command=command,
                                   progress=lambda s: print(s, flush=True))
    print({k: metrics[k] for k in ("accuracy", "sensitivity", "specificity", "roc_auc", "n_val", "epochs_run")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
