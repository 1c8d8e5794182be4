"""Segmentation of a volume on its own grid.

    Segmentation(spec)(volume, device, progress, cancel) -> SegmentationResult (labels, probabilities,
        uncertainty, tta)

pre: onto the model's grid (input.spacing / input.direction; ai.model_grid), z-score over the
  nonzero voxels, centre zero-pad up to the network size (what training did, ai.preprocess);
predict: MONAI sliding_window_inference with roi = the training size (one window: the network
  directly), cancel checked between tiles; each tile's prediction is the softmax of the network,
  averaged with the softmax of the mirrored tile mirrored back for every axis of the manifest's
  test_time_augmentation.mirror_axes ("x" = the last array axis); on CUDA under autocast, out of
  memory -> smaller windows -> the CPU (the template's ladder);
invert: the padding cropped, the class probabilities resampled back onto the input's voxels;
post: labels (first maximum, as argmax), the highest foreground probability and the uncertainty
  map (normalised entropy of the mean probabilities: 0 certain .. 1 every class equally likely).
"""
from __future__ import annotations

import numpy as np

from medviewer.ai.inference import IncompatibleInput
from medviewer.ai.model_grid import to_model_grid
from medviewer.ai.preprocess import centre_pad_crop, normalise_zscore_nonzero
from medviewer.ai.tasks.base import InferTask, Run
from medviewer.ai.tasks.results import SegmentationResult
from medviewer.ai.tasks.trust import normalised_entropy
from medviewer.core.errors import MedViewerError
from medviewer.core.memory import check_fits

OVERLAP = 0.25
MIRROR_AXES = {"x": -1, "y": -2, "z": -3}  # spatial array axes (z, y, x) of a (N, C, z, y, x) tensor


def channel_argmax(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8, highest foreground probability float32) of (C, z, y, x) class probabilities.
    A running comparison over the few channels: ~10x faster than argmax over axis 0 (first
    maximum wins, as argmax)."""
    best = np.array(probs[0], np.float32)
    labels = np.zeros(best.shape, np.uint8)
    foreground = np.zeros(best.shape, np.float32)
    for c in range(1, len(probs)):
        channel = probs[c]
        np.maximum(foreground, channel, out=foreground)
        better = channel > best
        labels[better] = c
        np.maximum(best, channel, out=best)
    return labels, foreground


def tile_count(size: tuple[int, ...], window: tuple[int, ...], overlap: float) -> int:
    """How many windows MONAI's sliding window visits over `size` (for the progress fraction)."""
    n = 1
    for s, w in zip(size, window):
        step = max(int(w * (1 - overlap)), 1)
        n *= 1 if s <= w else int(np.ceil((s - w) / step)) + 1
    return n


def mirror_axes(spec) -> tuple[str, ...]:
    axes = (spec.manifest.get("test_time_augmentation") or {}).get("mirror_axes", [])
    unknown = [a for a in axes if a not in MIRROR_AXES]
    if unknown:
        raise MedViewerError(f"{spec.name}: test_time_augmentation.mirror_axes {unknown} (use x, y or z)")
    return tuple(axes)


class Segmentation(InferTask):
    kind, title = "segmentation", "segmentation"

    def check(self, volume) -> None:
        super().check(volume)
        if volume.data.ndim != 3:
            raise IncompatibleInput(f"{self.spec.name} expects a grey volume and this one has colour channels")

    def window(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.spec.input.get("size", [48, 64, 48]))

    def pre(self, run: Run):
        grid = to_model_grid(run.volume, self.spec.input.get("spacing"), self.spec.input.get("direction"))
        roi = self.window()
        padded = tuple(max(n, r) for n, r in zip(grid.volume.shape, roi))
        classes = len(self.spec.outputs.get("labels", {})) + 1
        check_fits(4 * classes * int(np.prod(padded)) * 3, f"the class probabilities of {self.spec.name}")
        x, (pads, _) = centre_pad_crop(normalise_zscore_nonzero(grid.volume.data), padded)
        inner = tuple(slice(b, s - a) for (b, a), s in zip(pads, padded))
        run.say("pre-processed", 0.05)
        return grid, np.ascontiguousarray(x), inner

    def predict(self, run: Run, data, device: str, window):
        import torch

        _, x, _ = data
        net = self.network(run, device)
        flips = [(MIRROR_AXES[a],) for a in mirror_axes(self.spec)]
        n_tiles, done = tile_count(x.shape, window, OVERLAP), [0]
        run.say(f"segmenting on {device}: {n_tiles} tile(s) of {window}"
                + (f", mirrored along {', '.join(mirror_axes(self.spec))}" if flips else ""), 0.1)

        def predictor(tile):
            run.check_cancel()  # between tiles: a cancelled job stops within one tile
            probs = torch.softmax(net(tile).float(), dim=1)
            for dims in flips:
                probs += torch.softmax(net(torch.flip(tile, dims)).float(), dim=1).flip(dims)
            done[0] += 1
            run.say(f"segmenting on {device}: tile {done[0]}/{n_tiles}", 0.1 + 0.8 * done[0] / n_tiles)
            return probs / (1 + len(flips))

        xt = torch.from_numpy(x)[None, None].to(device)
        with torch.inference_mode(), torch.autocast(device_type="cuda", enabled=device.startswith("cuda")):
            if tuple(xt.shape[2:]) == tuple(window):  # one window: what the sliding window would return
                probs = predictor(xt)
            else:  # MONAI only when the volume needs more than one window
                from monai.inferers import sliding_window_inference

                probs = sliding_window_inference(xt, roi_size=window, sw_batch_size=1, predictor=predictor,
                                                 overlap=OVERLAP, mode="gaussian")
        return probs[0].float().cpu().numpy()

    def invert(self, run: Run, probs: np.ndarray) -> np.ndarray:
        grid, _, inner = run.data
        probs = probs[(slice(None),) + inner]
        if grid.resampled:
            run.say("resampling the probabilities back onto the image's grid")
            probs = grid.back(probs, background=(1.0,))
        return probs

    def post(self, run: Run, probs: np.ndarray) -> SegmentationResult:
        declared = len(self.spec.outputs.get("labels", {}))
        if len(probs) - 1 != declared:
            raise MedViewerError(f"{self.spec.name}: the network gives {len(probs) - 1} foreground outputs "
                                 f"for {declared} labels")
        labels, foreground = channel_argmax(probs)
        volume = run.volume
        return SegmentationResult(labels=volume.copy_geometry(labels),
                                  probabilities=volume.copy_geometry(np.clip(foreground, 0.0, 1.0)),
                                  uncertainty=volume.copy_geometry(normalised_entropy(probs)),
                                  tta=tuple(f"{a} mirror" for a in mirror_axes(self.spec)))
