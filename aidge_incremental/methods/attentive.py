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
2. 𝕊 (an Aidge MLP: FC(scorer_hidden) → ReLU → FC(1)) scores both: s_i, s_j;
   ``(a_i, a_j) = softmax(s_i, s_j)``;
3. after ``blend_warmup`` epochs of the step, the pair is replaced by
   ``a_i·x_i + a_j·x_j`` with target ``a_i·y_i + a_j·y_j`` (the scores are
   constants for the classifier's loss);
4. 𝕊 takes one SGD step (its own rate ``scorer_lr``, momentum 0.9) on its
   objective.

**The scorer's objective (our design; the paper leaves it open).** The
importance of a sample is how much its features moved from the teacher
(previous phase) to the student, ``d = ‖f_s(x) − f_t(x)‖₂`` (the
``features`` layer): a sample that drifted more (is being forgotten more, or
is new and still being learnt) gets the larger share of the virtual sample.
𝕊 minimises the pair cross-entropy ``−(t_i log a_i + (1 − t_i) log a_j)``
(mean over pairs; ``∂L/∂s_i = (a_i − t_i)/P``, checked by finite differences
in tests/methods/test_blending.py) toward the target

    t_i = σ(κ · z_i / sd(z)),   z_i = log d_i − log d_j,

the pair's log drift ratio standardised over the batch's pairs
(``target_sharpness`` κ = 2). Why this target: the first one we shipped,
``t_i = d_i / (d_i + d_j)`` (κ = 0 here), is a ratio of two norms of the same
order and stays within [0.38, 0.63] for 90 % of the pairs; a scorer that
always answers 0.5 is within 0.01–0.06 nats of its best loss, so training
*narrowed* the blend weights (untrained 𝕊: 5–95 % quantiles 0.30–0.70 on
digits; trained: 0.41–0.61) and the method was mixup with λ ≈ 0.5 — the
scorer did learn the drift's ranking (held-out Spearman 0.75–0.88), the
target simply had no spread to give. The log ratio is scale-free (the same κ
spreads the targets on any dataset and at any step: 5–95 % of the trained
weights in 0.05–0.95 on Fashion-MNIST) and keeps the ranking; κ = 2 puts a
pair one standard deviation apart at 0.88/0.12.

**The scorer's input.** ``scorer_input = "teacher_features"`` (default): 𝕊
scores the frozen teacher's feature vector of the image, standardised with
the mean and std of the step's training data (new samples and exemplars);
drift is more predictable from it than from pixels (held-out Spearman of a
ridge fit 0.91–0.93 against 0.79–0.80), and 𝕊 is re-initialised at each
step, as its input space changes with the teacher. ``"pixels"``: the image
itself (our first version); 𝕊 then carries over the steps. Either way 𝕊
scores an image alone, so at blend time it needs neither the labels nor the
partner. ``"frozen"`` (``scorer_objective``) keeps 𝕊 at its random
initialisation: the ablation "blend weights from an untrained 𝕊".

**Controls** (``blend_source``): ``"drift"`` blends with the target itself
(an oracle of what 𝕊 learns; computed every batch anyway); ``"permuted"``
shuffles the scorer's weights across the batch's pairs (with a generator of
its own, so that the batches, partners and scorer updates are those of the
``"scorer"`` run of the same seed): the same weights, without their link to
the drift. A claim that the attention matters is a
comparison with ``"permuted"`` (docs/results.md reports it: on split
Fashion-MNIST, weights that follow the drift do no better than shuffled ones,
and attentive replay does not beat mixup).

**Rate.** The paper's 2e-6 is for its ResNet-32 setup; our 𝕊 is a
one-hidden-layer MLP whose gradient is O(1/P), so 2e-6 would leave it at its
initialisation within our few epochs. ``scorer_lr = 0.01`` (momentum 0.9)
moves its weights by 10–40 % of their norm over a step and reaches a held-out
Spearman of 0.9 with the drift (3 steps per batch at 0.05 gained 0.03).
**Warm-up.** 20 of 90 epochs in the paper (22 %); our runs train a few epochs
a step, so the default is 1 epoch per step (``blend_warmup``; a value ≥ the
epochs never blends). 𝕊 trains during the warm-up too, so its weights are
informed when blending starts.

Checkpoints hold 𝕊's weights, its momentum buffers and its input statistics
(exact resume), and the quantiles of the blend weights used at each step
(``blend_weight_quantiles``).
"""
from __future__ import annotations

from typing import Optional

import aidge_core
import numpy as np

from ..models import IncrementalModel
from ..options import Option
from .components import Blending
from .icarl import ICaRL

__all__ = ["AttentiveBlending", "AttentiveReplay", "BLEND_SOURCES", "SCORER_INPUTS", "Scorer", "drift_target",
           "feature_statistics"]

SCORER_MOMENTUM = 0.9  # as the classifier's SGD (iCaRL, FACIL); the paper does not say
SCORER_INPUTS = ("teacher_features", "pixels")
BLEND_SOURCES = ("scorer", "drift", "permuted")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  #: of the blend weights, recorded per step


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) without overflow for scores of any size."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def feature_statistics(features: np.ndarray):
    """Per-feature mean and std that standardise 𝕊's input. A feature constant over the
    data (a dead ReLU) says nothing: its std is inf (scale 0), not 0 — an augmented sample
    that wakes it would otherwise become an input of 1e6 and the scores explode."""
    features = np.asarray(features, np.float64)
    std = features.std(axis=0)
    std[std < 1e-4 * max(float(std.max()), 1e-12)] = np.inf
    return features.mean(axis=0), std


def drift_target(d_i: np.ndarray, d_j: np.ndarray, sharpness: float) -> np.ndarray:
    """The scorer's target share ``t_i`` of the new sample in each pair, from the two
    feature drifts (module docstring): ``σ(κ·z/sd(z))``, ``z = log d_i − log d_j`` over the
    batch's pairs (0.5 everywhere when the pairs' ratios do not vary); ``κ = 0``:
    ``d_i / (d_i + d_j)``. Rises with d_i, falls with d_j."""
    d_i, d_j = np.asarray(d_i, np.float64), np.asarray(d_j, np.float64)
    if sharpness == 0:
        return d_i / np.maximum(d_i + d_j, 1e-12)
    z = np.log(d_i + 1e-8) - np.log(d_j + 1e-8)
    spread = z.std()
    if not spread > 1e-12:
        return np.full(len(z), 0.5)
    return _sigmoid(sharpness * z / spread)


class Scorer:
    """𝕊: an Aidge MLP giving one score per input, trained by its own SGD with
    momentum (NumPy update, so its buffers are plain arrays to checkpoint)."""

    def __init__(self, input_shape, hidden: int, seed: int, backend: str = "cpu"):
        self.net = IncrementalModel("mlp", input_shape, hidden=(hidden,), n_classes=1, seed=seed,
                                    backend=backend)
        self.momentum = {k: np.zeros_like(v) for k, v in self.net.state_dict().items()}
        self._zero = None

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.net.logits(np.ascontiguousarray(x, np.float32), batch_size=len(x))[:, 0]

    def pair_weights(self, x_i: np.ndarray, x_j: np.ndarray) -> np.ndarray:
        """``a_i = softmax(s_i, s_j)_i`` for each pair."""
        s = self.scores(np.concatenate([x_i, x_j])).astype(np.float64)
        return _sigmoid(s[:len(x_i)] - s[len(x_i):])

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
        a_i = _sigmoid(diff)
        t_i = np.asarray(t_i, np.float64)
        # log a_i = −log(1 + e^−diff), log a_j = −log(1 + e^diff): finite for any scores
        loss = float(np.mean(t_i * np.logaddexp(0.0, -diff) + (1 - t_i) * np.logaddexp(0.0, diff)))
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
               source="Lee et al. SMC 2023 use 2e-6 (ResNet-32, CIFAR-100); 0.01 chosen for our MLP scorer "
                      "(see the attentive.py docstring)"),
        Option("scorer_hidden", int, 32, "hidden width of the scorer MLP 𝕊", minimum=1, maximum=4096,
               source="the paper: 'a small network'; our choice"),
        Option("blend_warmup", int, 1, "epochs of each step trained without blending", minimum=0,
               source="Lee et al. SMC 2023: 20 warm-up epochs of 90; 1 for our few-epoch runs"),
        Option("scorer_objective", str, "feature_change",
               "'feature_change': 𝕊's pair weights regress the teacher→student feature drift target; "
               "'frozen': 𝕊 untrained (ablation)", choices=("feature_change", "frozen"),
               source="our design from the paper's words (see the attentive.py docstring)"),
        Option("target_sharpness", float, 2.0, "κ of the target σ(κ·z/sd(z)), z the pair's log drift ratio "
               "(0: d_i/(d_i + d_j), whose spread is too small to move the weights off 0.5)", minimum=0.0,
               maximum=100.0, source="our choice: κ = 2 spreads the targets over [0.05, 0.95] (attentive.py "
                                     "docstring)"),
        Option("scorer_input", str, "teacher_features", "what 𝕊 scores: the frozen teacher's features of "
               "the image, standardised ('teacher_features'), or its pixels ('pixels')", choices=SCORER_INPUTS,
               source="our choice: drift is more predictable from the teacher's features (attentive.py docstring)"),
        Option("blend_source", str, "scorer", "blend weights from 'scorer' (the method), 'drift' (the target "
               "itself, an oracle) or 'permuted' (the scorer's weights shuffled across the batch: a control)",
               choices=BLEND_SOURCES, source="scorer: the paper; drift and permuted: controls (docs/results.md)"),
    )

    def __init__(self, method, options):
        super().__init__(method, options)
        self.scorer_lr, self.blend_warmup = float(options["scorer_lr"]), int(options["blend_warmup"])
        self.scorer_objective = options["scorer_objective"]
        self.sharpness, self.scorer_input = float(options["target_sharpness"]), options["scorer_input"]
        self.blend_source, self.hidden = options["blend_source"], int(options["scorer_hidden"])
        model = method.model
        shape = model.input_shape if self.scorer_input == "pixels" else (model.feature_dim,)
        self.scorer = Scorer(shape, self.hidden, seed=method.seed + 7919, backend=model.backend)
        self.input_mean: Optional[np.ndarray] = None  #: teacher-feature statistics of the step
        self.input_std: Optional[np.ndarray] = None
        self.scorer_losses: list = []
        self._permutation_rng = np.random.default_rng(method.seed + 104729)
        self.blend_weight_quantiles: list = []  #: per step with blending: QUANTILES of the weights used
        self._weights_used: list = []

    # -- per step ------------------------------------------------------------------
    def before_step(self, step, dataset):
        super().before_step(step, dataset)
        self._weights_used = []
        teacher = self.method.teacher
        if self.scorer_input != "teacher_features" or self._exemplars is None or teacher is None:
            return
        # the teacher (hence 𝕊's input space) is new: fresh statistics and a fresh 𝕊
        features = teacher.features(np.concatenate([dataset.to_input(step.x_train), self._exemplars[0]]))
        self.input_mean, self.input_std = feature_statistics(features)
        self.scorer = Scorer((self.method.model.feature_dim,), self.hidden, seed=self.method.seed + 7919 + step.index,
                             backend=self.method.model.backend)

    def after_step(self, step, dataset):
        super().after_step(step, dataset)
        if self._weights_used:
            weights = np.concatenate(self._weights_used)
            self.blend_weight_quantiles.append([float(q) for q in np.quantile(weights, QUANTILES)])
        self._weights_used = []

    # -- per batch -------------------------------------------------------------------
    def blending(self, batch):
        return batch.epoch >= self.blend_warmup and super().blending(batch)

    def make_batch(self, batch):
        # The scorer trains from the first epoch of a step with a teacher (warm-up
        # included); this hook draws the pairs itself during the warm-up.
        if self._exemplars is not None and batch.epoch < self.blend_warmup and batch.indices is not None:
            new = self.new_rows(batch)
            if len(new):
                partners = self.method.rng.integers(0, len(self._exemplars[0]), size=len(new))
                self._attend(batch.inputs[new], self._exemplars[0][partners])
        return super().make_batch(batch)

    def blend_weights(self, batch, x_new, x_ex):
        weights = self._attend(x_new, x_ex)
        if self.blend_source == "permuted":  # its own generator: the batches and pairs stay those of "scorer"
            weights = self._permutation_rng.permutation(weights)
        self._weights_used.append(weights)
        return weights.astype(np.float32)

    def drift_and_inputs(self, x: np.ndarray):
        """``(‖f_student(x) − f_teacher(x)‖₂ per sample, what 𝕊 scores for x)``."""
        method = self.method
        student = method.model.features(x, batch_size=len(x)).astype(np.float64)
        teacher = method.teacher.features(x, batch_size=len(x)).astype(np.float64)
        drift = np.linalg.norm(student - teacher, axis=1)
        if self.scorer_input == "pixels":
            return drift, x
        return drift, ((teacher - self.input_mean) / self.input_std).astype(np.float32)

    def _attend(self, x_i, x_j):
        """The pair weights a_i used for blending (by ``blend_source``); trains 𝕊 once
        (unless frozen), its weights taken before its update."""
        p = len(x_i)
        drift, inputs = self.drift_and_inputs(np.concatenate([x_i, x_j]))
        target = drift_target(drift[:p], drift[p:], self.sharpness)
        if self.scorer_objective == "frozen":
            a = self.scorer.pair_weights(inputs[:p], inputs[p:])
        else:
            loss, a, grads = self.scorer.pair_loss_and_gradient(inputs[:p], inputs[p:], target)
            self.scorer.sgd_step(grads, self.scorer_lr)
            self.scorer_losses.append(loss)
        if self.blend_source == "drift":
            a = target
        return np.clip(a, 0.0, 1.0)

    # -- checkpoints ---------------------------------------------------------------
    def state_dict(self):
        state = {**self.scorer.state_dict(), "scorer_losses": list(self.scorer_losses),
                 "blend_weight_quantiles": [list(q) for q in self.blend_weight_quantiles],
                 "blend_permutation_rng": self._permutation_rng.bit_generator.state}
        if self.input_mean is not None:
            state.update(scorer_input_mean=self.input_mean, scorer_input_std=self.input_std)
        return state

    def load_state_dict(self, state):
        mean, std = state.get("scorer_input_mean"), state.get("scorer_input_std")
        if (mean is None) != (std is None):
            raise ValueError("the checkpoint holds only one of the scorer's input mean and std")
        if mean is not None:
            mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
            width = self.method.model.feature_dim
            if mean.shape != (width,) or std.shape != (width,) or not np.all(np.isfinite(mean)) \
                    or not np.all(std > 0) or np.any(np.isnan(std)):
                raise ValueError(f"the checkpoint's scorer input statistics must be {width} finite means and "
                                 f"{width} stds > 0 (inf: a constant feature)")
        quantiles = [list(map(float, q)) for q in state.get("blend_weight_quantiles", [])]
        permutation = np.random.default_rng()
        if "blend_permutation_rng" in state:
            try:
                permutation.bit_generator.state = state["blend_permutation_rng"]
            except (TypeError, ValueError, KeyError) as e:
                raise ValueError(f"the checkpoint's blend_permutation_rng is not a generator state: {e}") from None
        else:
            permutation = self._permutation_rng
        self.scorer.load_state_dict(state)
        self._permutation_rng = permutation
        self.input_mean, self.input_std = mean, std
        self.scorer_losses = list(state.get("scorer_losses", []))
        self.blend_weight_quantiles = quantiles


class AttentiveReplay(ICaRL):
    name = "attentive"
    components = ICaRL.components + (AttentiveBlending,)

    @property
    def scorer(self) -> Scorer:
        """The scorer network 𝕊 of the blending component."""
        return self.parts[-1].scorer
