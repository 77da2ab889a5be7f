"""Attentive knowledge replay (Lee et al., "Data Efficient Incremental Learning
via Attentive Knowledge Replay", IEEE SMC 2023), on iCaRL.

What the paper says (its code is unpublished; from its project page and
command line): pairs (x_i, x_j) of new samples and exemplars; a small network
𝕊 with shared weights scores each image; the two scores are normalised into
a_i, a_j; the virtual sample ``a_i·x_i + a_j·x_j`` is trained with the mixed
label ``a_i·y_i + a_j·y_j``; 𝕊 learns an importance "derived from the change
of the image features over incremental phases"; iCaRL base, 20 warm-up epochs
(of 90) without blending, attention-module lr 2e-6 (ResNet-32, CIFAR-100).

Per batch of a step with a teacher and exemplars:

1. each new sample x_i gets a random exemplar partner x_j (as mixup);
2. 𝕊 (an Aidge MLP: flatten → FC(scorer_hidden) → ReLU → FC(1), on the
   model's input) scores both: s_i, s_j; ``(a_i, a_j) = softmax(s_i, s_j)``;
3. after ``blend_warmup`` epochs of the step, the pair is replaced by
   ``a_i·x_i + a_j·x_j`` with target ``a_i·y_i + a_j·y_j`` (the scores are
   constants for the classifier's loss);
4. 𝕊 takes one SGD step (its own rate ``scorer_lr``, momentum 0.9) on its
   objective.

**The scorer's objective (our design; the paper leaves it open).**
``scorer_objective = "feature_change"``: the importance of a sample is how
much its features moved from the teacher (previous phase) to the student,
``d = ‖f_s(x) − f_t(x)‖₂`` (the ``features`` layer). The pair's normalised
changes ``t_i = d_i / (d_i + d_j)``, ``t_j = 1 − t_i`` are the target of
its normalised scores: 𝕊 minimises the pair cross-entropy
``−(t_i log a_i + t_j log a_j)`` (mean over pairs). Why: (a) it is the
paper's words made literal — the importance is derived from the feature
change, and a sample that drifted more (is being forgotten more, or is new
and still being learnt) gets the larger share of the virtual sample; (b) the
target is defined per pair through the same softmax that makes the blend
weights, so 𝕊 is trained exactly on the quantity it controls, and its
gradient goes through the normalisation of the pair
(``∂L/∂s_i = (a_i − t_i)/P``, checked by finite differences in
tests/test_blending.py); (c) 𝕊 scores an image alone (shared weights), so
at blend time it needs neither the teacher nor the labels of the pair — it
generalises the feature change to images from their pixels. The
alternative, training 𝕊 through the blend by the classifier's loss, would
push a_i toward whichever sample is easiest (lowest loss), the opposite of
replaying what is forgotten; we did not take it. ``"frozen"`` keeps 𝕊 at its
random initialisation (an ablation: blending weights from an untrained 𝕊).

**Rate.** The paper's 2e-6 is for its ResNet-32 setup (its classifier's lr
is 0.1-scale with a 64-d pooled feature); our 𝕊 is a one-hidden-layer MLP
on digits whose targets are in [0, 1] and whose gradient is O(1/P), so 2e-6
would leave it at its initialisation within our few epochs. We chose
``scorer_lr = 0.01`` (momentum 0.9): 𝕊's pair loss falls within one step
on split digits/MNIST (its loss is recorded in ``scorer_losses``).
**Warm-up.** 20 of 90 epochs in the paper (22 %); our digits runs train a
few epochs a step, so the default is 1 epoch per step (``blend_warmup``; a
value ≥ the epochs never blends). 𝕊 trains during the warm-up too, so its
weights are informed when blending starts.

Checkpoints hold 𝕊's weights and its momentum buffers (exact resume).
"""
from __future__ import annotations

import aidge_core
import numpy as np

from ..models import IncrementalModel
from ..options import Option
from .components import Blending
from .icarl import ICaRL

__all__ = ["AttentiveBlending", "AttentiveReplay", "Scorer"]

SCORER_MOMENTUM = 0.9  # as the classifier's SGD (iCaRL, FACIL); the paper does not say


class Scorer:
    """𝕊: an Aidge MLP giving one score per image, trained by its own SGD with
    momentum (NumPy update, so its buffers are plain arrays to checkpoint)."""

    def __init__(self, input_shape, hidden: int, seed: int, backend: str = "cpu"):
        self.net = IncrementalModel("mlp", input_shape, hidden=(hidden,), n_classes=1, seed=seed,
                                    backend=backend)
        self.momentum = {k: np.zeros_like(v) for k, v in self.net.state_dict().items()}
        self._zero = None

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.net.logits(np.ascontiguousarray(x, np.float32), batch_size=len(x))[:, 0]

    def pair_loss_and_gradient(self, x_i, x_j, t_i):
        """Forward 𝕊 on both sides, the pair cross-entropy against targets
        ``t_i`` (and ``1 − t_i``); returns ``(loss, a_i, gradients by parameter)``."""
        p = len(x_i)
        x = np.ascontiguousarray(np.concatenate([x_i, x_j]), np.float32)
        graph, scheduler = self.net.graph, self.net.scheduler
        if self._zero is None:
            import aidge_learning  # loaded when used (its import costs a second)
            self._zero = aidge_learning.SGD(momentum=0.0, weight_decay=0.0)
            self._zero.set_parameters(self.net.parameter_nodes())
        scheduler.forward(data=[aidge_core.Tensor(x)])
        out = self.net.output
        s = np.array(out, np.float64)[:, 0]
        diff = s[:p] - s[p:]
        a_i = 1.0 / (1.0 + np.exp(-diff))
        t_i = np.asarray(t_i, np.float64)
        eps = 1e-12
        loss = float(np.mean(-(t_i * np.log(a_i + eps) + (1 - t_i) * np.log(1 - a_i + eps))))
        g = (a_i - t_i) / p
        seed = np.concatenate([g, -g])[:, None].astype(np.float32)
        self._zero.reset_grad()
        out.grad.copy_from(aidge_core.Tensor(seed))
        scheduler.backward()
        grads = {node.name(): np.array(node.get_operator().get_output(0).grad, np.float32)
                 for node in aidge_core.producers(graph)}
        return loss, a_i, grads

    def sgd_step(self, grads, lr: float) -> None:
        params = self.net.state_dict()
        for name, g in grads.items():
            self.momentum[name] = SCORER_MOMENTUM * self.momentum[name] + g
            params[name] = params[name] - lr * self.momentum[name]
        for node in aidge_core.producers(self.net.graph):
            node.get_operator().get_output(0).copy_from(aidge_core.Tensor(np.ascontiguousarray(params[node.name()])))

    def state_dict(self) -> dict:
        state = {f"scorer.{k}": v for k, v in self.net.state_dict().items()}
        state.update({f"scorer_momentum.{k}": v for k, v in self.momentum.items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        names = list(self.momentum)
        missing = [n for n in names if f"scorer.{n}" not in state or f"scorer_momentum.{n}" not in state]
        if missing:
            raise ValueError(f"the checkpoint lacks the scorer's {missing}")
        momentum = {n: np.asarray(state[f"scorer_momentum.{n}"], np.float32) for n in names}
        for n in names:
            if momentum[n].shape != self.momentum[n].shape or not np.all(np.isfinite(momentum[n])):
                raise ValueError(f"the checkpoint's scorer momentum {n} has shape {momentum[n].shape}, "
                                 f"expected {self.momentum[n].shape} (finite)")
        self.net.load_state_dict({n: state[f"scorer.{n}"] for n in names})
        self.momentum = momentum
        self._zero = None


class AttentiveBlending(Blending):
    """Blend weights from the scorer 𝕊 (module docstring), after a warm-up."""
    options = (
        Option("scorer_lr", float, 0.01, "learning rate of the scorer network 𝕊", minimum=0.0,
               source="Lee et al. SMC 2023 use 2e-6 (ResNet-32, CIFAR-100); 0.01 chosen for our MLP on "
                      "digits (see the attentive.py docstring)"),
        Option("scorer_hidden", int, 32, "hidden width of the scorer MLP 𝕊", minimum=1, maximum=4096,
               source="the paper: 'a small network'; our choice"),
        Option("blend_warmup", int, 1, "epochs of each step trained without blending", minimum=0,
               source="Lee et al. SMC 2023: 20 warm-up epochs of 90; 1 for our few-epoch digits runs"),
        Option("scorer_objective", str, "feature_change",
               "'feature_change': 𝕊's pair weights regress the normalised teacher→student feature change; "
               "'frozen': 𝕊 untrained (ablation)", choices=("feature_change", "frozen"),
               source="our design from the paper's words (see the attentive.py docstring)"),
    )

    def __init__(self, method, options):
        super().__init__(method, options)
        self.scorer_lr, self.blend_warmup = float(options["scorer_lr"]), int(options["blend_warmup"])
        self.scorer_objective = options["scorer_objective"]
        model = method.model
        self.scorer = Scorer(model.input_shape, int(options["scorer_hidden"]), seed=method.seed + 7919,
                             backend=model.backend)
        self.scorer_losses: list = []

    def blending(self, batch):
        return batch.epoch >= self.blend_warmup and super().blending(batch)

    def make_batch(self, batch):
        # The scorer trains from the first epoch of a step with a teacher (warm-up
        # included); this hook draws the pairs itself during the warm-up.
        if self._exemplars is not None and batch.epoch < self.blend_warmup and batch.indices is not None:
            new = self.new_rows(batch)
            if len(new):
                partners = self.method.rng.integers(0, len(self._exemplars[0]), size=len(new))
                self._train_scorer(batch.inputs[new], self._exemplars[0][partners])
        return super().make_batch(batch)

    def blend_weights(self, batch, x_new, x_ex):
        return self._train_scorer(x_new, x_ex).astype(np.float32)

    def feature_change(self, x: np.ndarray) -> np.ndarray:
        """``‖f_student(x) − f_teacher(x)‖₂`` per sample."""
        method = self.method
        return np.linalg.norm(method.model.features(x, batch_size=len(x)).astype(np.float64)
                              - method.teacher.features(x, batch_size=len(x)), axis=1)

    def _train_scorer(self, x_i, x_j):
        """The pair weights a_i of 𝕊 before its update, then one update of 𝕊."""
        p = len(x_i)
        if self.scorer_objective == "frozen":
            s = self.scorer.scores(np.concatenate([x_i, x_j]))
            return 1.0 / (1.0 + np.exp(-(s[:p] - s[p:]).astype(np.float64)))
        d = self.feature_change(np.concatenate([x_i, x_j]))
        t_i = d[:p] / np.maximum(d[:p] + d[p:], 1e-12)
        loss, a_i, grads = self.scorer.pair_loss_and_gradient(x_i, x_j, t_i)
        self.scorer.sgd_step(grads, self.scorer_lr)
        self.scorer_losses.append(loss)
        return a_i

    def state_dict(self):
        return {**self.scorer.state_dict(), "scorer_losses": list(self.scorer_losses)}

    def load_state_dict(self, state):
        self.scorer.load_state_dict(state)
        self.scorer_losses = list(state.get("scorer_losses", []))


class AttentiveReplay(ICaRL):
    name = "attentive"
    components = ICaRL.components + (AttentiveBlending,)

    @property
    def scorer(self) -> Scorer:
        """The scorer network 𝕊 of the blending component."""
        return self.parts[-1].scorer
