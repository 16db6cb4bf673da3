"""mask trackers; importing this package registers them."""
from . import sam2_lite  # noqa: F401  (registers "sam2-lite")
from . import sam2_official  # noqa: F401,E402  (registers the sam2.1-hiera-* trackers)
