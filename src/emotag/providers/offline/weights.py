"""The offline model's files: where they are, what they must hash to, and loading them.

The files ship inside the package (scripts/build_offline_model.py rebuilds them from the
published wheels); nothing is ever downloaded. A file whose sha256 is not the pinned one
is refused, so a damaged install cannot label with a different network.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from emotag.errors import ConfigError

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

MODELS: Final = Path(__file__).parent / "models"
SHA256: Final = {
    "expression.onnx": "532f97a571cc366f0a28b0ec519190c37812ea703c2ae58e34ffba1d542f033d",
    "face_short.onnx": "ecc613cfc71e425f13585bc19c9aa1246ad5904fb071b95da3a64cddb833cfb7",
    "face_full.onnx": "118737ae4355f72556e0987b0417af079ee4927694ef47f51984491821de3ca8",
}
FILES: Final = tuple(SHA256)
# The `model` column's name: it changes whenever any of the weights do.
VERSION: Final = hashlib.sha256("".join(SHA256.values()).encode()).hexdigest()[:8]
MODEL_NAME: Final = f"local-fer-{VERSION}"


class ModelUnavailable(ConfigError):
    """The offline model cannot run here: onnxruntime does not load, or a file is damaged."""


def verified(name: str, folder: Path | None = None) -> bytes:
    """The bytes of one model file, refused unless they hash to the pinned sha256."""
    path = (folder or MODELS) / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailable(
            f"The offline model file {path} cannot be read ({exc.strerror or exc}); "
            "reinstall emotag (pip install --force-reinstall emotag)."
        ) from exc
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise ModelUnavailable(
            f"The offline model file {path} is not the one emotag ships (its sha256 differs); "
            "reinstall emotag (pip install --force-reinstall emotag)."
        )
    return data


@cache
def session(name: str) -> InferenceSession:
    """One onnxruntime session per file and process, on one thread: the run calls it from
    several threads at once, which onnxruntime allows, so every core is used."""
    data = verified(name)
    try:
        import onnxruntime
    except ImportError as exc:  # no wheel for this platform, or a broken install
        raise ModelUnavailable(
            f"The offline model needs onnxruntime, which cannot be imported here ({exc}); "
            "install it (pip install onnxruntime) or label with another --provider."
        ) from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are not the user's business
    try:
        return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelUnavailable(
            f"onnxruntime cannot load the offline model ({exc}); upgrade it "
            "(pip install -U onnxruntime) or label with another --provider."
        ) from exc
