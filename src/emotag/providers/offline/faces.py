"""Find faces with MediaPipe's BlazeFace: the short-range model first, the full-range one
(small faces, group photos) only where the first finds none.

Anchors and box decoding follow MediaPipe's face_detection graphs (SsdAnchorsCalculator,
TensorsToDetectionsCalculator): a box is an offset from its anchor's centre in input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final

from emotag.providers.offline.weights import session

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL import Image as PILImage

NMS_IOU: Final = 0.3


@dataclass(frozen=True, slots=True)
class Detector:
    """One BlazeFace model: its file, input side, anchor grid and score threshold."""

    file: str
    side: int
    # (stride, anchors per cell), MediaPipe's layers of one stride merged.
    grids: tuple[tuple[int, int], ...]
    threshold: float


# Thresholds checked on faces and on pictures without one (docs/providers.md): 0.6 for the
# short-range model (MediaPipe ships 0.5, which takes a cat for a face), and for the
# full-range pass, asked only where the first found nothing.
SHORT: Final = Detector("face_short.onnx", 128, ((8, 2), (16, 6)), 0.6)
FULL: Final = Detector("face_full.onnx", 192, ((4, 1),), 0.6)


@dataclass(frozen=True, slots=True)
class Face:
    """A face box in the image's pixels, and the detector's score for it."""

    left: float
    top: float
    right: float
    bottom: float
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.right - self.left) * max(0.0, self.bottom - self.top)


def find_faces(image: PILImage.Image) -> list[Face]:
    """Every face in an RGB image, most prominent (largest) first."""
    for detector in (SHORT, FULL):
        if faces := detect(image, detector):
            return faces
    return []


def detect(image: PILImage.Image, detector: Detector) -> list[Face]:
    """The faces one detector finds, after non-maximum suppression."""
    import numpy as np

    tensor, scale, pad_x, pad_y = _letterboxed(image, detector.side)
    boxes, logits = session(detector.file).run(None, {"input": tensor})
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100.0, 100.0)))
    keep = scores >= detector.threshold
    if not keep.any():
        return []
    anchors = _anchors(detector)[keep]
    raw = boxes[0, keep, :4] / detector.side
    centre_x = raw[:, 0] + anchors[:, 0]
    centre_y = raw[:, 1] + anchors[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    # From the letterboxed square back to the image's own pixels.
    side = detector.side / scale
    corners = np.stack(
        [
            (centre_x - half_w) * side - pad_x,
            (centre_y - half_h) * side - pad_y,
            (centre_x + half_w) * side - pad_x,
            (centre_y + half_h) * side - pad_y,
        ],
        axis=1,
    )
    kept = scores[keep]
    chosen = _suppressed(corners, kept)
    faces = []
    for i in chosen:
        left, top, right, bottom = (float(v) for v in corners[i])
        faces.append(Face(left, top, right, bottom, float(kept[i])))
    return sorted(faces, key=lambda face: face.area, reverse=True)


def _letterboxed(
    image: PILImage.Image, side: int
) -> tuple[NDArray[np.float32], float, float, float]:
    """The image scaled into a `side` square (aspect kept, black bars), as the model's
    NCHW input in [-1, 1]; with the scale and the bars' widths in image pixels."""
    import numpy as np
    from PIL import Image

    width, height = image.size
    scale = side / max(width, height)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    square = Image.new("RGB", (side, side))
    offset = ((side - inner[0]) // 2, (side - inner[1]) // 2)
    square.paste(image.resize(inner, Image.Resampling.BILINEAR), offset)
    array = np.asarray(square, dtype=np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
    return array, scale, offset[0] / scale, offset[1] / scale


@cache
def _anchors(detector: Detector) -> NDArray[np.float32]:
    """Anchor centres in [0, 1], in the order the model's outputs are."""
    import numpy as np

    centres: list[tuple[float, float]] = []
    for stride, per_cell in detector.grids:
        cells = -(-detector.side // stride)
        for row in range(cells):
            for col in range(cells):
                centres.extend([((col + 0.5) / cells, (row + 0.5) / cells)] * per_cell)
    return np.array(centres, dtype=np.float32)


def _suppressed(corners: NDArray[np.float32], scores: NDArray[np.float32]) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best first."""
    import numpy as np

    order = list(np.argsort(-scores))
    kept: list[int] = []
    while order:
        best = order.pop(0)
        kept.append(int(best))
        order = [i for i in order if _iou(corners[best], corners[i]) < NMS_IOU]
    return kept


def _iou(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = float(width * height)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0
