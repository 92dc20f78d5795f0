"""What every provider asks: the prompt and the answer's schema (faces first, then one of
the seven emotions)."""

from __future__ import annotations

from typing import Any, Final

from emotag.emotions import EMOTIONS, FACE_COUNTS

DEFAULT_PROMPT: Final = (
    "You are an expert annotator of facial expressions. Count the human faces in the image: "
    "none, one or several (with none, the emotion is ignored). Classify the expression of "
    "the face, or of the most prominent face if there are several, as exactly one of: "
    + ", ".join(EMOTIONS)
    + "."
)

# Faces come first so the model commits to "is there a face" before picking an emotion.
RESPONSE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "faces": {"type": "string", "enum": list(FACE_COUNTS)},
        "emotion": {"type": "string", "enum": list(EMOTIONS)},
    },
    "required": ["faces", "emotion"],
    "propertyOrdering": ["faces", "emotion"],
}

# The same for OpenAI's strict structured outputs: no Gemini-only keyword, no extra keys.
STRICT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": RESPONSE_SCHEMA["properties"],
    "required": ["faces", "emotion"],
    "additionalProperties": False,
}
