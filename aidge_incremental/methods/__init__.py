"""Class-incremental learning methods, one file each."""
from .base import IncrementalMethod
from .finetune import Finetune
from .icarl import ICaRL
from .joint import Joint
from .lwf import LwF

METHODS = {cls.name: cls for cls in (Finetune, Joint, LwF, ICaRL)}

__all__ = ["METHODS", "Finetune", "ICaRL", "IncrementalMethod", "Joint", "LwF"]
