"""The official CoTracker3 checkpoints (online and offline): the network matches the official code
with the same (random) weights loaded into both, and clips are walked as the official predictors
do. Importing this package registers the `cotracker3-online` and `cotracker3-offline` point
trackers."""
from ...checkpoints import OFFICIAL_WEIGHTS
from ...registry import register
from .model import CoTracker3
from .tracker import CoTracker3OfflineTracker, CoTracker3OnlineTracker, load_official

CoTracker3OnlineTracker.weights_spec = OFFICIAL_WEIGHTS["cotracker3_online"]
CoTracker3OfflineTracker.weights_spec = OFFICIAL_WEIGHTS["cotracker3_offline"]
register("cotracker3-online", kind="point", priority=-5, weights=(CoTracker3OnlineTracker.weights_spec,),
         description="CoTracker3 online (official weights; non-commercial licence; "
                     "16-frame sliding windows)")(CoTracker3OnlineTracker)
register("cotracker3-offline", kind="point", priority=-6, weights=(CoTracker3OfflineTracker.weights_spec,),
         description="CoTracker3 offline (official weights; non-commercial licence; "
                     "the whole clip as one window: memory grows with its length)")(CoTracker3OfflineTracker)

__all__ = ["CoTracker3", "CoTracker3OfflineTracker", "CoTracker3OnlineTracker", "load_official"]
