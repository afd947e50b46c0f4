"""MP4 (H.264 through imageio-ffmpeg's bundled ffmpeg, offline) and GIF (Pillow) writers."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
from PIL import Image

from app.export.raster import Rasterizer, frames

GIF_MIN_DELAY_MS = 20  # browsers play shorter GIF delays at 100 ms: cap GIFs at 50 fps


def write_mp4(raster: Rasterizer, path: Path, fps: int, progress=None) -> None:
    """All frames of ``raster`` as an H.264 MP4 at ``fps`` (yuv420p: plays in every browser).

    Frames are piped to ffmpeg as they are drawn, so drawing and encoding overlap.
    """
    height, width, _ = raster.shape  # both even (see Caption.height), as yuv420p needs
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, quality=None, macro_block_size=1,
        output_params=["-crf", "20", "-preset", "veryfast", "-movflags", "+faststart"],
    )  # fmt: skip
    writer.send(None)  # starts ffmpeg
    try:
        for frame in frames(raster, progress):
            writer.send(frame)
    finally:
        writer.close()


def write_gif(raster: Rasterizer, path: Path, fps: int, progress=None) -> None:
    """All frames as a looping GIF; each frame gets its own 256-colour palette (fast octree,
    no dithering: flat colours stay flat). Holds the paletted frames in memory until written."""
    delay = max(GIF_MIN_DELAY_MS, round(1000 / fps / 10) * 10)  # GIF counts centiseconds
    images = [
        Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE,
                                        dither=Image.Dither.NONE)
        for frame in frames(raster, progress)
    ]  # fmt: skip
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=delay,
                   loop=0)  # fmt: skip
