"""Class-incremental learning methods, one file each; each declares its
options (:class:`aidge_incremental.options.Option`) in ``options``, and its
constructor takes them as keywords. Register a new method in :data:`METHODS`."""
from .attentive import AttentiveReplay
from .base import IncrementalMethod
from .finetune import Finetune
from .icarl import ICaRL
from .joint import Joint
from .lwf import LwF
from .lwm import LwM
from .mixup import MixupICaRL
from .replay import Replay

METHODS = {cls.name: cls for cls in (Finetune, Joint, LwF, ICaRL, LwM, MixupICaRL, AttentiveReplay)}

__all__ = ["METHODS", "AttentiveReplay", "Finetune", "ICaRL", "IncrementalMethod", "Joint", "LwF", "LwM",
           "MixupICaRL", "Replay"]
