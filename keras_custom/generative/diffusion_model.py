"""`DiffusionModel`: a denoising diffusion model with DDIM and DDPM sampling."""

import keras
import numpy as np
from keras import ops

from keras_custom.core import (
    CustomModel,
    inference_function,
    replica_random,
    serialize_scalar,
    validate_scalar,
)
from keras_custom.core.input_checks import (
    check_single_input,
    class_ids,
    describe,
    network_input,
    require_labels,
)
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar
from keras_custom.generative import diffusion_schedule as schedule_lib
from keras_custom.generative.gan import _positive_int
from keras_custom.layers import TargetNetwork

#: The guidance scale `w` of `generate` when a conditional model is given none.
DEFAULT_GUIDANCE_SCALE = 1.0


def _choice(value, name: str, allowed: tuple) -> str:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}. Got: {value!r}.")
    return value


@keras.saving.register_keras_serializable(package="keras_custom")
class DiffusionModel(CustomModel):
    """A denoising diffusion model trained by `fit(x)` (or `fit(x, labels)`).

    Each training example gets a random time step `t` in `[0, timesteps)`
    and standard normal noise `ε`; the network sees the noised sample
    `x_t = sqrt(ᾱ_t) x + sqrt(1 - ᾱ_t) ε` and `t`, and is trained by the
    mean squared error to predict `ε` (`prediction="epsilon"`, Ho et al.)
    or `v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x` (`prediction="v"`, Salimans and
    Ho). `ᾱ_t` follows the `"cosine"` or `"linear"` schedule
    (`keras_custom.generative.diffusion_schedule`). Time steps and noise are
    drawn from the model's own seed, saved and resumed with it.

    After every optimizer step an exponential moving average of the network
    (a `keras_custom.layers.TargetNetwork`, as BYOL's target) moves to
    `ema_decay * ema + (1 - ema_decay) * network`; `generate` samples with
    it. Its weights are weights of the model, saved, restored and resumed
    with it. With few training steps, give a smaller `ema_decay` or a
    schedule (`keras_custom.schedules.CosineIncrease`): the average spans
    about `1 / (1 - ema_decay)` steps.

    **The network** is called as `network([x_t, t])`, or
    `network([x_t, t, labels])` when `num_classes` is set, with `x_t` of the
    samples' shape, `t` int32 time steps of shape `(batch,)` (e.g. through
    `keras_custom.layers.TimestepEmbedding`) and `labels` int32 class ids of
    shape `(batch,)` in `[0, num_classes]`: the extra id `num_classes` is
    "no label", the unconditional model of classifier-free guidance. It
    returns its prediction (`ε` or `v`) in the samples' shape. In training
    each label is replaced by `num_classes` with probability
    `guidance_dropout`.

    Logs `loss` (and `val_loss`; `evaluate()` draws time steps and noise the
    same way, so it estimates the same loss). `sample_weight` weights each
    example's error. `model([x_t, t])` and `predict` run the (online)
    network; `model.ema_network` is the average; `generate` samples.

    Args:
        network: A built model, the denoiser, as described above.
        timesteps: Number of diffusion steps `T`.
        schedule: `"cosine"` (Nichol and Dhariwal) or `"linear"` (Ho et al.).
        prediction: `"epsilon"` or `"v"`: what the network predicts.
        ema_decay: Decay of the network's moving average: a float, or a
            schedule evaluated at the optimizer's iterations.
        num_classes: Number of classes of a conditional model (`fit(x, y)`
            with integer class ids), or `None` for an unconditional one.
        guidance_dropout: Probability that a training label is replaced by
            the "no label" id `num_classes`, which trains the unconditional
            model that classifier-free guidance needs.
        sample_range: `(low, high)` of the data, e.g. `(-1.0, 1.0)` for
            pixels scaled as Ho et al. do, or `None`. When given, the
            samplers clip each estimate of the clean sample to it, which
            keeps the first steps of a cosine schedule stable.
        min_snr_gamma: `γ` of the Min-SNR loss weighting (Hang et al.), or
            `None` for the plain mean squared error. Each example's error is
            weighted by `min(SNR_t, γ) / SNR_t` (`"epsilon"`) or
            `min(SNR_t, γ) / (SNR_t + 1)` (`"v"`), `SNR_t = ᾱ_t / (1 - ᾱ_t)`:
            the nearly clean time steps count less, which speeds up training
            (the paper uses `γ = 5`).
        optimizer: Optimizer of the network. Defaults to Adam unless given to
            `compile(optimizer=...)`.
        seed: Seed of the time steps, noise and label dropout of training.
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import DiffusionModel
    from keras_custom.layers import TimestepEmbedding

    samples = keras.Input((64,))
    timesteps = keras.Input((), dtype="int32")
    hidden = keras.layers.Concatenate()([samples, TimestepEmbedding(16)(timesteps)])
    hidden = keras.layers.Dense(64, activation="silu")(hidden)
    network = keras.Model([samples, timesteps], keras.layers.Dense(64)(hidden))

    model = DiffusionModel(network, timesteps=100, ema_decay=0.9,
                           sample_range=(0.0, 1.0))
    model.compile()
    images = np.random.default_rng(0).uniform(size=(64, 64)).astype("float32")
    model.fit(images, batch_size=16, epochs=1, verbose=0)
    digits = model.generate(4, steps=10, seed=0)  # shape (4, 64), in [0, 1]
    ```

    Reference:
        Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020
        (https://arxiv.org/abs/2006.11239); Song et al., "Denoising
        Diffusion Implicit Models", ICLR 2021
        (https://arxiv.org/abs/2010.02502); Nichol and Dhariwal, "Improved
        Denoising Diffusion Probabilistic Models", ICML 2021
        (https://arxiv.org/abs/2102.09672); Salimans and Ho, "Progressive
        Distillation for Fast Sampling of Diffusion Models", ICLR 2022
        (https://arxiv.org/abs/2202.00512); Ho and Salimans,
        "Classifier-Free Diffusion Guidance", 2022
        (https://arxiv.org/abs/2207.12598); Hang et al., "Efficient
        Diffusion Training via Min-SNR Weighting Strategy", ICCV 2023
        (https://arxiv.org/abs/2303.09556).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "network"
    #: `compute_loss` noises the samples and calls the network itself.
    predicts_before_loss = False

    def __init__(
        self,
        network: keras.Model,
        timesteps: int = 1000,
        schedule: str = "cosine",
        prediction: str = "epsilon",
        ema_decay: Scalar = 0.999,
        num_classes: int | None = None,
        guidance_dropout: float = 0.1,
        sample_range: tuple[float, float] | None = None,
        min_snr_gamma: float | None = None,
        optimizer: OptimizerLike = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, **kwargs)
        if not isinstance(network, keras.layers.Layer) or not network.built:
            raise ValueError(
                f"`network` must be a built Keras model. Got: {network!r}."
            )
        self.timesteps = _positive_int(timesteps, "timesteps")
        self.schedule = _choice(schedule, "schedule", schedule_lib.SCHEDULES)
        self.prediction = _choice(prediction, "prediction", schedule_lib.PREDICTIONS)
        self.ema_decay = validate_scalar(ema_decay, "ema_decay")
        self.num_classes = (
            None if num_classes is None else _positive_int(num_classes, "num_classes")
        )
        if isinstance(guidance_dropout, bool) or not 0.0 <= guidance_dropout < 1.0:
            raise ValueError(
                f"`guidance_dropout` must be in [0, 1). Got: {guidance_dropout!r}."
            )
        self.guidance_dropout = float(guidance_dropout)
        if sample_range is not None:
            low, high = (float(value) for value in sample_range)
            if not low < high:
                raise ValueError(
                    f"`sample_range` must be `(low, high)` with low < high. "
                    f"Got: {sample_range!r}."
                )
            sample_range = (low, high)
        self.sample_range = sample_range
        if min_snr_gamma is not None and (
            isinstance(min_snr_gamma, bool) or not float(min_snr_gamma) > 0
        ):
            raise ValueError(
                f"`min_snr_gamma` must be a positive float or None. Got: "
                f"{min_snr_gamma!r}."
            )
        self.min_snr_gamma = None if min_snr_gamma is None else float(min_snr_gamma)
        inputs = getattr(network, "inputs", None)
        expected = 2 if self.num_classes is None else 3
        if inputs is not None and len(inputs) != expected:
            parts = "[x_t, t]" if expected == 2 else "[x_t, t, labels]"
            raise ValueError(
                f"The network of DiffusionModel '{self.name}' must take "
                f"{expected} inputs, {parts}"
                + (" (num_classes is set)" if expected == 3 else "")
                + f". It takes {len(inputs)}."
            )
        self.network = network
        self.ema_network = TargetNetwork(network, name="ema_network")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.alpha_bar = schedule_lib.alpha_bars(self.timesteps, self.schedule)
        self.add_optimizer("optimizer", None, None, default="adam")
        self.add_tracker("loss")
        self._sampler_functions = {}
        self.built = network.built

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def _alpha_bar_of(self, timesteps, rank: int):
        """`ᾱ_t` for int time steps `(batch,)`, shaped to broadcast on samples."""
        table = ops.convert_to_tensor(self.alpha_bar.astype("float32"))
        values = ops.take(table, timesteps)
        return ops.reshape(values, (-1,) + (1,) * (rank - 1))

    def _network_inputs(self, x_t, timesteps, labels):
        return [x_t, timesteps] if labels is None else [x_t, timesteps, labels]

    def sample_timesteps_and_noise(self, batch_size, sample_shape: tuple):
        """Random time steps `(batch,)` in `[0, timesteps)` and standard
        normal noise `(batch, *sample_shape)`, from the model's seed.

        Under a distribution strategy those of the global batch are drawn and
        this replica's rows returned, so training equals training on one
        device.
        """
        uniform = replica_random.uniform(batch_size, (), self.seed_generator)
        timesteps = ops.minimum(
            ops.cast(ops.floor(uniform * self.timesteps), "int32"), self.timesteps - 1
        )
        noise = replica_random.normal(batch_size, sample_shape, self.seed_generator)
        return timesteps, noise

    def drop_labels(self, labels):
        """`labels` with each replaced by `num_classes` with probability
        `guidance_dropout` (drawn from the model's seed)."""
        if self.guidance_dropout == 0:
            return labels
        batch_size = ops.shape(labels)[0]
        dropped = (
            replica_random.uniform(batch_size, (), self.seed_generator)
            < self.guidance_dropout
        )
        return ops.where(dropped, ops.full_like(labels, self.num_classes), labels)

    def denoising_loss(
        self, x, timesteps, noise, labels=None, sample_weight=None, training=True
    ):
        """The mean squared error of the network's prediction of `ε` or `v`.

        Args:
            x: Clean samples.
            timesteps: Their int32 time steps, `(batch,)`.
            noise: Their noise `ε`, like `x`.
            labels: Their class ids (the network's third input), or `None`.
            sample_weight: Weight of each example's error, or `None`.
            training: Passed to the network.

        Returns:
            The mean over the batch of each example's mean squared error
            (weighted by Min-SNR when `min_snr_gamma` is set).
        """
        x = ops.cast(x, "float32")
        timesteps = ops.cast(timesteps, "int32")
        noise = ops.cast(noise, "float32")
        if labels is not None:
            labels = ops.cast(labels, "int32")
        rank = len(x.shape)
        alpha_bar = self._alpha_bar_of(timesteps, rank)
        x_t = schedule_lib.noisy_samples(x, noise, alpha_bar)
        output = self.network(
            self._network_inputs(x_t, timesteps, labels), training=training
        )
        output = ops.cast(output, "float32")
        if tuple(output.shape[1:]) != tuple(x.shape[1:]):
            raise ValueError(
                f"The network of {describe(self)} returns shape "
                f"{tuple(output.shape[1:])} per sample, but the samples have "
                f"shape {tuple(x.shape[1:])}."
            )
        if self.prediction == "v":
            target = schedule_lib.velocity(x, noise, alpha_bar)
        else:
            target = noise
        errors = ops.mean(ops.square(output - target), axis=tuple(range(1, rank)))
        if self.min_snr_gamma is not None:
            snr = ops.reshape(alpha_bar / (1.0 - alpha_bar), (-1,))
            clipped = ops.minimum(snr, self.min_snr_gamma)
            errors = errors * (
                clipped / (snr + 1.0) if self.prediction == "v" else clipped / snr
            )
        if sample_weight is not None:
            errors = errors * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        return ops.mean(errors)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """`denoising_loss` at random time steps and noise, under `"loss"`.

        `x` are the clean samples and `y` their class ids (used only by a
        conditional model, whose labels are dropped for guidance); `y_pred`
        is unused.
        """
        if x is None:
            raise ValueError(f"{describe(self)} needs samples: `fit(x)`.")
        check_single_input(x, self, network_input(self.network, 0), "samples")
        labels = None
        if self.num_classes is not None:
            require_labels(y, self, "it is conditional (`num_classes` is set)")
            labels = class_ids(y, self)
        timesteps, noise = self.sample_timesteps_and_noise(
            ops.shape(x)[0], tuple(x.shape[1:])
        )
        if labels is not None:
            labels = self.drop_labels(labels)
        loss = self.denoising_loss(
            x, timesteps, noise, labels, sample_weight, training=training
        )
        return {"loss": loss}

    def train_step(self, data):
        logs = super().train_step(data)
        self.ema_network.update(lambda: self.scalar(self.ema_decay, "optimizer"))
        return logs

    # ------------------------------------------------------------------
    # Sampling
    # ------------------------------------------------------------------

    def _sample_shape(self) -> tuple:
        sample_input = network_input(self.network, 0)
        shape = None if sample_input is None else tuple(sample_input.shape[1:])
        if shape is None or None in shape:
            raise ValueError(
                f"{describe(self)} cannot tell the shape of a sample: build the "
                "network functionally, from a `keras.Input` of the samples' "
                "full shape."
            )
        return shape

    def _checked_labels(self, labels, count: int):
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(
                    f"{describe(self)} is unconditional (no `num_classes`): "
                    "`generate` takes no `labels`."
                )
            return None
        if labels is None:
            raise ValueError(
                f"{describe(self)} is conditional: give `generate` the class id "
                f"of each sample, `labels=` of {count} integers in "
                f"[0, {self.num_classes})."
            )
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"`labels` must be integer class ids. Got dtype {labels.dtype}."
            )
        if labels.ndim == 0:
            labels = np.full(count, int(labels))
        labels = labels.reshape(-1)
        if len(labels) != count:
            raise ValueError(
                f"`labels` must hold one class id per sample: {count}. Got "
                f"{len(labels)}."
            )
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"`labels` must be in [0, {self.num_classes}). Got values from "
                f"{labels.min()} to {labels.max()}."
            )
        return labels.astype("int32")

    def _denoised(self, x_t, timesteps, labels, guidance_scale, alpha_bar):
        """`(x̂_0, ε̂)` of the moving-average network at `x_t`, guided."""
        if labels is None:
            output = self.ema_network(
                self._network_inputs(x_t, timesteps, None), training=False
            )
        elif guidance_scale is None:
            output = self.ema_network([x_t, timesteps, labels], training=False)
        else:
            # The conditional and unconditional predictions in one call.
            null = ops.full_like(labels, self.num_classes)
            both = self.ema_network(
                [
                    ops.concatenate([x_t, x_t], axis=0),
                    ops.concatenate([timesteps, timesteps], axis=0),
                    ops.concatenate([labels, null], axis=0),
                ],
                training=False,
            )
            both = ops.cast(both, "float32")
            conditional, unconditional = ops.split(both, 2, axis=0)
            output = schedule_lib.guided(conditional, unconditional, guidance_scale)
        output = ops.cast(output, "float32")
        denoised, noise = schedule_lib.denoised_and_noise(
            x_t, output, alpha_bar, self.prediction
        )
        if self.sample_range is not None:
            denoised = ops.clip(denoised, *self.sample_range)
            # The noise that, with the clipped estimate, gives `x_t` again.
            noise = (x_t - ops.sqrt(alpha_bar) * denoised) / ops.sqrt(1.0 - alpha_bar)
        return denoised, noise

    def _sampler_step(self, sampler: str, conditional: bool, guided: bool):
        """The compiled update of one sampler step, made once per kind."""
        key = (sampler, conditional, guided)
        if key not in self._sampler_functions:

            def step(x_t, timesteps, labels, guidance_scale, alpha_bars, eta, z):
                alpha_bar, alpha_bar_previous = alpha_bars[0], alpha_bars[1]
                denoised, noise = self._denoised(
                    x_t,
                    timesteps,
                    labels if conditional else None,
                    guidance_scale if guided else None,
                    alpha_bar,
                )
                if sampler == "ddpm":
                    return schedule_lib.ddpm_update(
                        x_t, denoised, alpha_bar, alpha_bar_previous, z
                    )
                return schedule_lib.ddim_update(
                    x_t, denoised, noise, alpha_bar, alpha_bar_previous, eta, z
                )

            self._sampler_functions[key] = inference_function(step, self)
        return self._sampler_functions[key]

    def generate(
        self,
        count: int,
        steps: int = 50,
        sampler: str = "ddim",
        labels=None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        eta: float = 0.0,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Samples `count` examples with the moving-average network.

        Starts from standard normal noise at time step `T - 1` and visits
        `steps` evenly spaced time steps down to 0
        (`diffusion_schedule.sampling_timesteps`):

        - `"ddim"`: the DDIM update (Song et al., eq. 12); with `eta=0` it
          is deterministic given the starting noise (the same `seed` gives
          the same samples), `eta=1` is ancestral sampling.
        - `"ddpm"`: ancestral sampling of the posterior
          `q(x_prev | x_t, x̂_0)` (Ho et al., eqs. 6-7) between the visited
          time steps, with the posterior variance; `steps=timesteps` is the
          full chain of Algorithm 2, fewer steps the respaced chain of
          Nichol and Dhariwal (section 4), which keeps its quality for a
          fraction of the network calls.

        A conditional model needs one class id per sample and applies
        classifier-free guidance, `ε̂ = (1 + w) ε̂(x, label) - w ε̂(x)`
        (Ho and Salimans, eq. 6, `w = guidance_scale`; `w = 0` is the
        conditional model alone and saves the second network call).

        Args:
            count: Number of samples.
            steps: Number of sampler steps (network evaluations), at most
                `timesteps`.
            sampler: `"ddim"` or `"ddpm"`.
            labels: Class ids, one per sample (or one for all), for a
                conditional model; must be `None` for an unconditional one.
            guidance_scale: `w` of a conditional model; defaults to
                `DEFAULT_GUIDANCE_SCALE` (1.0). Must be `None` for an
                unconditional model.
            seed: Seed of the noise (NumPy); `None` draws fresh noise.
            eta: DDIM's noise scale `η` (Song et al., eq. 16), `>= 0`.
            batch_size: Samples denoised together.

        Returns:
            A float32 NumPy array of shape `(count, *sample_shape)`.
        """
        count = _positive_int(count, "count")
        steps = _positive_int(steps, "steps")
        batch_size = _positive_int(batch_size, "batch_size")
        if steps > self.timesteps:
            raise ValueError(
                f"`steps` must be at most the model's `timesteps` "
                f"({self.timesteps}). Got: {steps}."
            )
        _choice(sampler, "sampler", schedule_lib.SAMPLERS)
        if isinstance(eta, bool) or not float(eta) >= 0.0:
            raise ValueError(f"`eta` must be a float >= 0. Got: {eta!r}.")
        if eta and sampler != "ddim":
            raise ValueError("`eta` is an argument of the `'ddim'` sampler only.")
        if self.num_classes is None and guidance_scale is not None:
            raise ValueError(
                f"{describe(self)} is unconditional (no `num_classes`): "
                "`guidance_scale` needs a conditional model."
            )
        labels = self._checked_labels(labels, count)
        if labels is not None and guidance_scale is None:
            guidance_scale = DEFAULT_GUIDANCE_SCALE
        if guidance_scale is not None and not np.isfinite(float(guidance_scale)):
            raise ValueError(f"`guidance_scale` must be finite. Got {guidance_scale}.")
        conditional = labels is not None
        guided = conditional and float(guidance_scale) != 0.0
        step = self._sampler_step(sampler, conditional, guided)
        shape = self._sample_shape()

        rng = np.random.default_rng(seed)
        x = rng.standard_normal((count, *shape)).astype("float32")
        visited = schedule_lib.sampling_timesteps(self.timesteps, steps)
        alpha_bar = self.alpha_bar
        scale = np.float32(0.0 if guidance_scale is None else guidance_scale)
        for index, t in enumerate(visited):
            previous = visited[index + 1] if index + 1 < len(visited) else -1
            alpha_bars = np.array(
                [alpha_bar[t], 1.0 if previous < 0 else alpha_bar[previous]],
                "float32",
            )
            stochastic = sampler == "ddpm" or eta > 0
            z = (
                rng.standard_normal(x.shape).astype("float32")
                if stochastic
                else np.zeros_like(x)
            )
            parts = []
            for start in range(0, count, batch_size):
                rows = slice(start, start + batch_size)
                n = len(x[rows])
                parts.append(
                    step(
                        x[rows],
                        np.full(n, t, "int32"),
                        labels[rows] if conditional else np.zeros(n, "int32"),
                        scale,
                        alpha_bars,
                        np.float32(eta),
                        z[rows],
                    )
                )
            x = np.concatenate([np.asarray(part) for part in parts], axis=0)
        return x.astype("float32")

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "network": keras.saving.serialize_keras_object(self.network),
                "timesteps": self.timesteps,
                "schedule": self.schedule,
                "prediction": self.prediction,
                "ema_decay": serialize_scalar(self.ema_decay),
                "num_classes": self.num_classes,
                "guidance_dropout": self.guidance_dropout,
                "sample_range": (
                    None if self.sample_range is None else list(self.sample_range)
                ),
                "min_snr_gamma": self.min_snr_gamma,
                "seed": self.seed,
            }
        )
        return config
