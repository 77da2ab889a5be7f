"""Joint training: at each step, train on all the data of every class seen.

Not incremental (it keeps the whole past): the upper bound methods aim at.
What it trains on is derived from the scenario (steps 0..t), never from state
kept between steps, so a resumed run trains on the same data as an
uninterrupted one.
"""
import numpy as np

from .base import IncrementalMethod

__all__ = ["Joint"]


class Joint(IncrementalMethod):
    name = "joint"
    needs_scenario = True

    def step_samples(self, step):
        if self.scenario is None:
            raise ValueError("Joint needs the scenario (build it with scenario=...)")
        steps = [self.scenario.step(t) for t in range(step.index + 1)]
        return np.concatenate([s.x_train for s in steps]), np.concatenate([s.y_train for s in steps])
