"""Augmentation (random crop with zero padding, horizontal flip) against a plain
per-sample reference, reproducibility, and per-dataset normalisation."""
import numpy as np
import pytest

from aidge_incremental.datasets import DATASETS, Augmentation, Normalization, from_arrays
from aidge_incremental.datasets.cifar import CIFAR10_NORMALIZATION
from aidge_incremental.training import TrainConfig


def reference_augment(x, dy, dx, flip, padding):
    """One sample at a time, from the definition: zero-pad, cut the window at
    (dy, dx), mirror the columns when flipped."""
    out = np.empty_like(x)
    n, c, h, w = x.shape
    for i in range(n):
        canvas = np.zeros((c, h + 2 * padding, w + 2 * padding), x.dtype)
        canvas[:, padding:padding + h, padding:padding + w] = x[i]
        window = canvas[:, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        if flip[i]:
            window = window[:, :, ::-1]
        out[i] = window
    return out


@pytest.mark.parametrize("padding,flip", [(4, True), (4, False), (0, True), (2, True), (0, False)])
def test_matches_the_per_sample_reference_pixel_by_pixel(rng, padding, flip):
    x = rng.integers(0, 256, size=(37, 3, 32, 32), dtype=np.uint8)
    augmentation = Augmentation(padding=padding, flip=flip)
    dy, dx, flips = augmentation.draw(len(x), np.random.default_rng(7))
    assert dy.min() >= 0 and dy.max() <= 2 * padding and dx.max() <= 2 * padding
    if not flip:
        assert not flips.any()
    out = augmentation.apply(x, dy, dx, flips)
    assert out.dtype == np.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(out, reference_augment(x, dy, dx, flips, padding))
    # __call__ draws from the generator, then applies
    np.testing.assert_array_equal(augmentation(x, np.random.default_rng(7)), out)


def test_every_offset_and_both_flips_occur(rng):
    x = rng.integers(0, 256, size=(2000, 1, 6, 6), dtype=np.uint8)
    dy, dx, flip = Augmentation(padding=4).draw(len(x), rng)
    assert set(dy.tolist()) == set(range(9)) == set(dx.tolist())
    assert 0.4 < flip.mean() < 0.6
    # the centred, unflipped window is the image itself
    out = Augmentation(padding=4).apply(x[:1], np.array([4]), np.array([4]), np.array([False]))
    np.testing.assert_array_equal(out, x[:1])
    # the fully shifted window shows the zero padding
    out = Augmentation(padding=4).apply(x[:1], np.array([0]), np.array([0]), np.array([False]))
    assert (out[0, :, :4, :] == 0).all() and (out[0, :, 4:, 4:] == x[0, :, :2, :2]).all()


def test_same_seed_same_batches(rng):
    x = rng.integers(0, 256, size=(50, 3, 8, 8), dtype=np.uint8)
    aug = Augmentation()
    a = [aug(x, g) for g in [np.random.default_rng(3)] for _ in range(3)]
    b = [aug(x, g) for g in [np.random.default_rng(3)] for _ in range(3)]
    c = aug(x, np.random.default_rng(4))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], a[1]), "successive batches are augmented differently"
    assert not np.array_equal(a[0], c)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="padding"):
        Augmentation(padding=-1)
    with pytest.raises(ValueError, match="NCHW"):
        Augmentation()(np.zeros((3, 8, 8), np.uint8), np.random.default_rng(0))


def test_defaults_per_dataset(rng):
    assert DATASETS["cifar10"].augmentation == Augmentation(4, True)
    assert DATASETS["cifar100"].augmentation == Augmentation(4, True)
    assert DATASETS["digits"].augmentation is None and DATASETS["mnist"].augmentation is None
    x = rng.integers(0, 256, size=(6, 3, 8, 8), dtype=np.uint8)
    plain = from_arrays(x, np.arange(6) % 2, x, np.arange(6) % 2, name="arrays")
    cifar_like = plain.replace(augmentation=DATASETS["cifar100"].augmentation)
    config = TrainConfig()
    assert config.augmentation(cifar_like) == Augmentation(4, True)
    assert config.augmentation(plain) is None
    assert TrainConfig(augment=True, crop_padding=2, flip=False).augmentation(plain) == Augmentation(2, False)
    assert TrainConfig(augment=True).augmentation(plain) == Augmentation(4, True)
    assert TrainConfig(crop_padding=1).augmentation(cifar_like) == Augmentation(1, True)
    assert TrainConfig(augment=False).augmentation(cifar_like) is None
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment="yes")


def test_normalisation_per_channel(rng):
    x = rng.integers(0, 256, size=(6, 3, 4, 4), dtype=np.uint8)
    data = from_arrays(x, np.arange(6) % 2, x, np.arange(6) % 2, name="cifar10", max_value=255)
    assert DATASETS["cifar10"].normalization == CIFAR10_NORMALIZATION
    norm = data.replace(normalization=CIFAR10_NORMALIZATION)
    mean, std = CIFAR10_NORMALIZATION.mean, CIFAR10_NORMALIZATION.std
    got = norm.to_input(x[:2])
    for c in range(3):  # plain float64 reference
        expected = (x[:2, c].astype(np.float64) / 255 - mean[c]) / std[c]
        np.testing.assert_allclose(got[:, c], expected, rtol=1e-6, atol=1e-6)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(norm.x_train, data.x_train)
    np.testing.assert_allclose(data.to_input(x[:2]), x[:2] / 255, rtol=1e-6)  # none: only scaled
    digits = from_arrays(x[:, :1], np.arange(6) % 2, x[:, :1], np.arange(6) % 2, name="mnist")
    custom = digits.replace(normalization=Normalization([0.5], [0.25]))
    np.testing.assert_allclose(custom.to_input(x[:1, :1]), (x[:1, :1] / 255 - 0.5) / 0.25, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="1 channel"):
        data.replace(normalization=Normalization([0.5], [0.2]))
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalization([0.5] * 3, [0.2, 0.0, 0.2])
    with pytest.raises(ValueError, match="one mean and one std per channel"):
        Normalization([0.5] * 3, [0.2])
