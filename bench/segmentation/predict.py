"""`brainbench predict` for a segmentation entry: a tumour mask and an overlay PNG per input image.

The image is fed as training fed it (its checkpoint's input contract: padded to a square, resized,
normalized); the predicted probabilities go back the same way (resized to the padded square,
cropped to the image), so the mask has the input image's own size and lies on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.data.decode import decode_image
from bench.errors import ImageDecodeError
from bench.inference import LoadedModel, decode_for
from bench.segmentation.pictures import write_mask_png, write_overlay_png
from bench.segmentation.train import THRESHOLD

MASK_SUFFIX = "_mask.png"
OVERLAY_SUFFIX = "_overlay.png"


@dataclass(frozen=True)
class MaskPrediction:
    path: Path
    mask_file: Path | None = None
    overlay_file: Path | None = None
    tumour_share: float | None = None  # predicted tumour pixels / all pixels
    error: str | None = None  # why the image could not be read


def _original(path: Path) -> np.ndarray:
    """The image in grey at its own size (uint8 (H, W))."""
    with Image.open(path) as image:
        width, height = image.size
    square = decode_image(path, max(width, height), 1)[0]  # padded to a centred square, not resized
    top, left = (square.shape[0] - height) // 2, (square.shape[1] - width) // 2
    return square[top:top + height, left:left + width]


def _back_to_image(probabilities: np.ndarray, height: int, width: int) -> np.ndarray:
    side = max(height, width)
    resized = np.asarray(Image.fromarray(probabilities.astype(np.float32), mode="F").resize(
        (side, side), Image.Resampling.BILINEAR))
    top, left = (side - height) // 2, (side - width) // 2
    return resized[top:top + height, left:left + width] >= THRESHOLD


@torch.no_grad()
def predict_masks(loaded: LoadedModel, paths: list[Path], out_dir: Path) -> list[MaskPrediction]:
    """One MaskPrediction per path; an unreadable image gets its reason, the others are still written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    contract = loaded.contract
    results = []
    for path in map(Path, paths):
        try:
            model_input = decode_for(loaded.preprocessing, path)  # (1, S, S) as training saw it
            original = _original(path)
        except (ImageDecodeError, OSError) as error:
            results.append(MaskPrediction(path, error=str(error)))
            continue
        x = torch.from_numpy(model_input).to(loaded.device, torch.float32)[None] / 255.0
        x = (x - contract.mean[0]) / contract.std[0]
        probabilities = torch.sigmoid(loaded.model(x))[0, 0].float().cpu().numpy()
        mask = _back_to_image(probabilities, *original.shape)
        stem = out_dir / path.stem
        results.append(MaskPrediction(path, write_mask_png(mask, Path(f"{stem}{MASK_SUFFIX}")),
                                      write_overlay_png(original, mask, Path(f"{stem}{OVERLAY_SUFFIX}")),
                                      float(mask.mean())))
    return results
