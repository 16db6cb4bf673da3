"""Review videos (no Qt): `render_video(video, snapshot(store), "out.mp4")` draws the annotations
into every frame and encodes H.264 through PyAV."""
from .draw import RenderOptions, draw_overlay, snapshot, tag_text
from .video import render_video

__all__ = ["RenderOptions", "draw_overlay", "render_video", "snapshot", "tag_text"]
