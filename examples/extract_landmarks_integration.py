"""Option 1 of the workflow: extract_landmarks.py looks each label up instead of parsing
the file name. Landmarks are stubbed here (image size and mean brightness) so the example
runs anywhere; put your real extractor (MediaPipe, dlib, …) where `landmarks()` is.

    python examples/extract_landmarks_integration.py dataset/random_expressions \\
        --labels dataset/llm_labels.csv --output dataset/landmarks.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image, ImageStat

from emotag import LabelStore
from emotag.files.discovery import iter_images


def landmarks(image_path: Path) -> list[float]:
    """Stand-in for a real landmark extractor."""
    with Image.open(image_path) as img:
        gray = img.convert("L")
        return [float(gray.width), float(gray.height), ImageStat.Stat(gray).mean[0]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--labels", type=Path, default=Path("dataset/llm_labels.csv"))
    parser.add_argument("--output", type=Path, default=Path("dataset/landmarks.csv"))
    args = parser.parse_args()

    # The one-line change: labels come from the CSV; names like male_young_asian_happy.png
    # still work for images the CSV does not cover.
    labels = LabelStore.from_csv(args.labels, root=args.folder, fallback="filename")

    with open(args.output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "emotion", "width", "height", "brightness"])
        skipped = 0
        for image in iter_images(args.folder):
            emotion = labels.emotion_for(image)  # was: emotion = image.stem.split("_")[-1]
            if emotion is None:
                skipped += 1
                continue
            writer.writerow([image, emotion, *landmarks(image)])
    print(f"wrote {args.output}; {skipped} image(s) without a label skipped")


if __name__ == "__main__":
    main()
