"""Classical trackers (OpenCV, no weights): CSRT boxes, DIS-flow masks, Lucas-Kanade points.
Importing this package registers them."""
from . import csrt, dis_flow, lk  # noqa: F401
