"""The floor for emotag's CPU per image: the bare google-genai SDK sending each file as it
is, with the same concurrency, schema and prompt, and nothing else.

    python benchmarks/sdk_floor.py URL FOLDER CONCURRENCY
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from google import genai
from google.genai import types

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from emotag.providers.gemini import DEFAULT_PROMPT, RESPONSE_SCHEMA
from fakes.gemini_api import TEST_KEY


async def main(url: str, folder: Path, concurrency: int) -> None:
    client = genai.Client(api_key=TEST_KEY, http_options=types.HttpOptions(base_url=url))
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=RESPONSE_SCHEMA
    )
    paths = sorted(folder.iterdir())
    slots = asyncio.Semaphore(concurrency)
    mime = {".png": "image/png", ".jpg": "image/jpeg"}

    async def send(path: Path) -> None:
        async with slots:
            part = types.Part.from_bytes(data=path.read_bytes(), mime_type=mime[path.suffix])
            await client.aio.models.generate_content(
                model="gemini-3.5-flash-lite", contents=[part, DEFAULT_PROMPT], config=config
            )

    await asyncio.gather(*(send(p) for p in paths))
    await client.aio.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
