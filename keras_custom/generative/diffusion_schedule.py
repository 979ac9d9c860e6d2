"""The noise schedules and update rules of `DiffusionModel`.

Plain functions of the cumulative signal level `alpha_bar` (written `ᾱ`
below), shared by the model's training step and its samplers, and checked
against the papers' equations in `tests/test_diffusion.py`:

- `alpha_bars`: `ᾱ_t` of the linear schedule of Ho et al. (2020) or the
  cosine schedule of Nichol and Dhariwal (2021), for `t` in `[0, T)`.
- `noisy_samples`: the forward process `q(x_t | x_0)`,
  `x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε`.
- `velocity`, `denoised_and_noise`: the `v` target of Salimans and Ho
  (2022), and the estimates of `x_0` and `ε` a network's output gives.
- `guided`: classifier-free guidance (Ho and Salimans, 2022).
- `ddim_update`, `ddpm_update`: one step of either sampler from time step
  `t` to an earlier time step (`ᾱ = 1` after the last step).

The functions take and return `keras.ops` tensors (NumPy arrays work too);
`ᾱ` values broadcast against the samples.

Example:

```python
import numpy as np
from keras_custom.generative import diffusion_schedule

alpha_bar = diffusion_schedule.alpha_bars(1000, "cosine")  # (1000,), falling
x0 = np.zeros((2, 4), "float32")
noise = np.ones((2, 4), "float32")
x_t = diffusion_schedule.noisy_samples(x0, noise, alpha_bar[500])
```
"""

import math

import numpy as np
from keras import ops

#: The schedules `alpha_bars` knows.
SCHEDULES = ("linear", "cosine")
#: What a network may predict: the noise `ε`, or `v`.
PREDICTIONS = ("epsilon", "v")
#: The samplers of `DiffusionModel.generate`.
SAMPLERS = ("ddim", "ddpm")

#: The linear schedule's first and last `β` for 1,000 steps (Ho et al.).
LINEAR_BETA_RANGE = (1e-4, 0.02)
#: The cosine schedule's offset `s` and the largest `β` of both schedules
#: (Nichol and Dhariwal).
COSINE_OFFSET = 0.008
COSINE_MAX_BETA = 0.999


def alpha_bars(timesteps: int, schedule: str = "cosine") -> np.ndarray:
    """`ᾱ_t = prod_{s <= t} (1 - β_s)` for the time steps `t = 0 .. T-1`.

    - `"linear"`: `β` rises linearly from `1e-4` to `0.02` over 1,000 steps
      (Ho et al., section 4); for another `T` both ends are multiplied by
      `1000 / T`, so the chain ends at the same noise level (the scaling of
      Nichol and Dhariwal's code), and clipped to at most 0.999 (below 20
      steps).
    - `"cosine"`: `ᾱ_t = f(t + 1) / f(0)` with
      `f(t) = cos((t / T + s) / (1 + s) * pi / 2) ** 2`, `s = 0.008`, each
      `β_t = 1 - ᾱ_t / ᾱ_{t-1}` clipped to at most 0.999 (Nichol and
      Dhariwal, eq. 17).

    Args:
        timesteps: Number of diffusion steps `T`.
        schedule: `"linear"` or `"cosine"`.

    Returns:
        A float64 NumPy array of shape `(timesteps,)`, decreasing from near
        1 to near 0.
    """
    if schedule == "linear":
        start, end = (value * 1000.0 / timesteps for value in LINEAR_BETA_RANGE)
        betas = np.minimum(
            np.linspace(start, end, timesteps, dtype="float64"), COSINE_MAX_BETA
        )
    elif schedule == "cosine":
        steps = np.arange(timesteps + 1, dtype="float64") / timesteps
        f = np.cos((steps + COSINE_OFFSET) / (1.0 + COSINE_OFFSET) * math.pi / 2) ** 2
        betas = np.minimum(1.0 - f[1:] / f[:-1], COSINE_MAX_BETA)
    else:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}. Got: {schedule!r}.")
    return np.cumprod(1.0 - betas)


def sampling_timesteps(timesteps: int, steps: int) -> np.ndarray:
    """The time steps a sampler visits: `steps` of `[0, T)`, evenly spaced.

    From `T - 1` down to 0, rounded to integers (the "uniform" subsequence
    of Song et al., section 4.2); all `T` of them when `steps == T`.

    Returns:
        An int32 NumPy array of shape `(steps,)`, strictly decreasing.
    """
    return np.round(np.linspace(timesteps - 1, 0, steps)).astype("int32")


def _sqrt(value):
    return ops.sqrt(ops.convert_to_tensor(value, "float32"))


def noisy_samples(x0, noise, alpha_bar):
    """`x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε`: a sample of `q(x_t | x_0)`."""
    return _sqrt(alpha_bar) * x0 + _sqrt(1.0 - alpha_bar) * noise


def velocity(x0, noise, alpha_bar):
    """`v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0` (Salimans and Ho, section 4)."""
    return _sqrt(alpha_bar) * noise - _sqrt(1.0 - alpha_bar) * x0


def denoised_and_noise(x_t, output, alpha_bar, prediction: str):
    """The estimates `(x̂_0, ε̂)` of a network's output at `x_t`.

    For `"epsilon"`, `ε̂` is the output and
    `x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t)`; for `"v"`,
    `x̂_0 = sqrt(ᾱ_t) x_t - sqrt(1 - ᾱ_t) v̂` and
    `ε̂ = sqrt(1 - ᾱ_t) x_t + sqrt(ᾱ_t) v̂`.
    """
    signal, noise_level = _sqrt(alpha_bar), _sqrt(1.0 - alpha_bar)
    if prediction == "v":
        return signal * x_t - noise_level * output, noise_level * x_t + signal * output
    return (x_t - noise_level * output) / signal, output


def guided(conditional, unconditional, guidance_scale):
    """Classifier-free guidance: `(1 + w) out_cond - w out_uncond`.

    Ho and Salimans (2022), eq. 6, with `w = guidance_scale`; `w = 0` is the
    conditional model alone. Applied to `ε` (or, being affine with weights
    summing to one, equally to `v`).
    """
    return (1.0 + guidance_scale) * conditional - guidance_scale * unconditional


def ddim_update(x_t, denoised, noise, alpha_bar, alpha_bar_previous, eta=0.0, z=None):
    """One DDIM step from `x_t` to the earlier time step's `x`.

    Song et al. (2021), eq. 12:
    `x_prev = sqrt(ᾱ_prev) x̂_0 + sqrt(1 - ᾱ_prev - σ²) ε̂ + σ z` with
    `σ = eta sqrt((1 - ᾱ_prev) / (1 - ᾱ_t)) sqrt(1 - ᾱ_t / ᾱ_prev)`
    (eq. 16); `eta = 0` is deterministic.

    Args:
        x_t: The current samples (unused but for the shape: the update is
            written in `x̂_0` and `ε̂`).
        denoised: `x̂_0`.
        noise: `ε̂`.
        alpha_bar: `ᾱ_t`.
        alpha_bar_previous: `ᾱ` of the earlier time step (1 after the last).
        eta: Scale of the fresh noise.
        z: Standard normal noise like `x_t`; needed when `eta > 0`.
    """
    del x_t
    ratio = ops.convert_to_tensor(alpha_bar, "float32") / ops.convert_to_tensor(
        alpha_bar_previous, "float32"
    )
    sigma = (
        eta * _sqrt((1.0 - alpha_bar_previous) / (1.0 - alpha_bar)) * _sqrt(1.0 - ratio)
    )
    direction = ops.sqrt(ops.maximum(1.0 - alpha_bar_previous - ops.square(sigma), 0.0))
    x = _sqrt(alpha_bar_previous) * denoised + direction * noise
    if z is not None:
        x = x + sigma * z
    return x


def ddpm_update(x_t, denoised, alpha_bar, alpha_bar_previous, z):
    """One ancestral step: a sample of the posterior `q(x_prev | x_t, x̂_0)`.

    Ho et al. (2020), eqs. 6 and 7, between two time steps of a
    subsequence (Nichol and Dhariwal, section 4: `β_t = 1 - ᾱ_t / ᾱ_prev`):
    mean `sqrt(ᾱ_prev) β_t / (1 - ᾱ_t) x̂_0
    + sqrt(1 - β_t) (1 - ᾱ_prev) / (1 - ᾱ_t) x_t`, variance
    `β̃_t = (1 - ᾱ_prev) / (1 - ᾱ_t) β_t` (0 at the last step). Over the
    full chain this is Algorithm 2's update with `σ_t² = β̃_t`.
    """
    alpha_bar = ops.convert_to_tensor(alpha_bar, "float32")
    alpha_bar_previous = ops.convert_to_tensor(alpha_bar_previous, "float32")
    alpha = alpha_bar / alpha_bar_previous
    beta = 1.0 - alpha
    mean = (ops.sqrt(alpha_bar_previous) * beta / (1.0 - alpha_bar)) * denoised + (
        ops.sqrt(alpha) * (1.0 - alpha_bar_previous) / (1.0 - alpha_bar)
    ) * x_t
    variance = (1.0 - alpha_bar_previous) / (1.0 - alpha_bar) * beta
    return mean + ops.sqrt(ops.maximum(variance, 0.0)) * z
