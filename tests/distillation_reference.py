"""Plain NumPy float64 definitions of the distillation losses, written from the
papers' formulas, independent of the C++ kernels they check."""
import numpy as np


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def kl_distillation(s, t, temperature, n_old):
    """T² · mean_b KL(softmax(t/T) ‖ softmax(s/T)) on the first n_old columns."""
    s = np.asarray(s, np.float64)[:, :n_old] / temperature
    t = np.asarray(t, np.float64)[:, :n_old] / temperature
    ls, lt = log_softmax(s), log_softmax(t)
    return temperature ** 2 * np.mean(np.sum(np.exp(lt) * (lt - ls), axis=1))


def bce_distillation(s, t, temperature, n_old):
    """mean_b Σ_j −[q log σ(x) + (1−q) log(1−σ(x))], x = s/T, q = σ(t/T)."""
    x = np.asarray(s, np.float64)[:, :n_old] / temperature
    q = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(t, np.float64)[:, :n_old] / temperature))
    log_sig = -np.logaddexp(0.0, -x)       # log σ(x)
    log_one_minus = -np.logaddexp(0.0, x)  # log (1 − σ(x))
    return np.mean(np.sum(-(q * log_sig + (1.0 - q) * log_one_minus), axis=1))


REFERENCE = {"kl": kl_distillation, "bce": bce_distillation}


def central_difference(f, x, eps=1e-4):
    """∂f/∂x by central finite differences, x a float64 array."""
    x = np.array(x, np.float64)
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f(x)
        flat[i] = old - eps
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a, b):
    return np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(np.ravel(b)), 1e-30)
