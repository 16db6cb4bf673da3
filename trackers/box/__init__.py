"""Box trackers; importing this package registers them."""
from . import mask_box, ostrack, siamfc_head, siamfc_mask, siamfc_variants  # noqa: F401
