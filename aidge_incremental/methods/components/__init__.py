"""The parts methods are composed from (see :mod:`..component`): replay, the
frozen teacher, L2-SP, blending replay."""
from .blending import Blending, blend, draw_partners
from .l2sp import L2SP
from .replay import Replay
from .teacher import TEACHER_LOGITS, Teacher

__all__ = ["Blending", "L2SP", "Replay", "TEACHER_LOGITS", "Teacher", "blend", "draw_partners"]
