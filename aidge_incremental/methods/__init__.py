"""Class-incremental learning methods, one file each, registered by name in
:data:`METHODS`.

A method is a subclass of :class:`IncrementalMethod` (``base.py``): its loss
(``objective``), the components it is composed of (``components/``: replay,
teacher, L2-SP, blending) and its own options, each with a cited default. See
``README.md`` in this folder for how to add one: one file, plus
:func:`register_method` (from your own code too), or an entry point in the
``aidge_incremental.methods`` group for a separate package.
"""
from ..registry import Registry
from .base import IncrementalMethod
from .component import Component
from .components import L2SP, Blending, Replay, Teacher

#: every method, by name (``--method NAME``); a package adds one through the
#: ``aidge_incremental.methods`` entry-point group
METHODS: Registry = Registry("method", entry_points="aidge_incremental.methods")


def register_method(cls, replace: bool = False):
    """Make a method usable by its ``name`` (``run_experiment``, ``--method``,
    configuration files); usable as a class decorator. Refuses a class that is
    not an :class:`IncrementalMethod` or whose options are malformed."""
    if not (isinstance(cls, type) and issubclass(cls, IncrementalMethod)):
        raise TypeError(f"register_method takes a subclass of IncrementalMethod, got {cls!r}")
    if not isinstance(cls.name, str) or cls.name in ("", "base"):
        raise ValueError(f"{cls.__name__} needs a class attribute name (the method's name), got {cls.name!r}")
    cls.declared_options()  # components and options must combine
    return METHODS.register(cls.name, cls, replace=replace)


# one module per method; each is registered here
from .attentive import AttentiveReplay  # noqa: E402
from .derpp import DERpp  # noqa: E402
from .ewc import EWC  # noqa: E402
from .finetune import Finetune  # noqa: E402
from .icarl import ICaRL  # noqa: E402
from .joint import Joint  # noqa: E402
from .lwf import LwF  # noqa: E402
from .lwm import LwM  # noqa: E402
from .mixup import MixupICaRL  # noqa: E402

for _method in (Finetune, Joint, LwF, ICaRL, LwM, MixupICaRL, AttentiveReplay, EWC, DERpp):
    register_method(_method)

__all__ = ["AttentiveReplay", "Blending", "Component", "DERpp", "EWC", "Finetune", "ICaRL", "IncrementalMethod", "Joint", "L2SP",
           "LwF", "LwM", "METHODS", "MixupICaRL", "Replay", "Teacher", "register_method"]
