"""Classify a face's expression with fer's mini-XCEPTION (trained on FER2013)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from emotag.providers.offline.weights import session

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from emotag.providers.offline.faces import Face

# The network's outputs, in FER2013's order.
CLASSES: Final = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIDE: Final = 64
# Context around the detector's box, a share of its side: FER2013's crops show the whole
# head, a little more than BlazeFace's brow-to-chin box.
MARGIN: Final = 0.1


def classify(grey: PILImage.Image, face: Face) -> dict[str, float]:
    """Each of the seven emotions' probability for the face in a greyscale image."""
    import numpy as np

    crop = np.asarray(_crop(grey, face), dtype=np.float32)
    tensor = ((crop / 255.0 - 0.5) * 2.0)[None, None]
    (scores,) = session("expression.onnx").run(None, {"input": tensor})
    return {name: float(p) for name, p in zip(CLASSES, scores[0], strict=True)}


def _crop(grey: PILImage.Image, face: Face) -> PILImage.Image:
    """The face's box made square and widened by the margin, at 64x64; what lies outside
    the image is filled with the mean of its bottom rows, as fer pads."""
    from PIL import Image, ImageStat

    side = max(face.right - face.left, face.bottom - face.top) * (1 + 2 * MARGIN)
    centre_x, centre_y = (face.left + face.right) / 2, (face.top + face.bottom) / 2
    left, top = round(centre_x - side / 2), round(centre_y - side / 2)
    box = (left, top, left + max(1, round(side)), top + max(1, round(side)))
    width, height = grey.size
    if box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height:
        crop = grey.crop(box)
    else:
        bottom = grey.crop((0, max(0, height - 2), width, height))
        crop = Image.new(
            "L", (box[2] - box[0], box[3] - box[1]), round(ImageStat.Stat(bottom).mean[0])
        )
        crop.paste(grey, (-box[0], -box[1]))
    return crop.resize((INPUT_SIDE, INPUT_SIDE), Image.Resampling.BILINEAR)
