"""point trackers; importing this package registers them."""
from . import cotracker3  # noqa: F401,E402  (registers the experimental cotracker3-online/offline trackers)
