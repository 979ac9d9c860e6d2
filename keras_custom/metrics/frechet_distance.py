"""`FrechetDistance`: a streaming Fréchet distance in a feature space."""

import keras
from keras import ops


def _symmetric_sqrt(matrix):
    """The square root of a symmetric positive semi-definite matrix."""
    eigenvalues, eigenvectors = ops.eigh(matrix)
    roots = ops.sqrt(ops.maximum(eigenvalues, 0.0))
    return ops.matmul(eigenvectors * roots[None, :], ops.transpose(eigenvectors))


def _feature_dim_of(feature_model) -> int | None:
    outputs = getattr(feature_model, "outputs", None)
    if outputs and len(outputs) == 1 and outputs[0].shape[-1] is not None:
        shape = outputs[0].shape[1:]
        size = 1
        for dim in shape:
            if dim is None:
                return None
            size *= int(dim)
        return size
    return None


@keras.saving.register_keras_serializable(package="keras_custom")
class FrechetDistance(keras.metrics.Metric):
    """The Fréchet distance between real and generated samples' features.

    Both sets of samples go through `feature_model` (in inference mode); the
    metric accumulates the count, sum and sum of outer products of each set's
    features over any number of `update_state` calls, in float64, and
    `result()` fits a Gaussian to each set and returns

    `||mu_r - mu_g||^2 + Tr(C_r + C_g - 2 (C_r C_g)^(1/2))`,

    with unbiased covariances. With an Inception network as the feature
    model this is the FID; any model works, e.g. the penultimate layer of a
    classifier trained on the real data. `reset_state()` clears both sets,
    and either set may be updated alone (`update_state(real=x)`), so real
    statistics can be gathered once.

    Args:
        feature_model: A model or layer mapping a batch of samples to
            features `(batch, ...)` (flattened per sample).
        feature_dim: Number of features per sample; read from a functional
            `feature_model` when not given.
        name: Name of the metric.
        **kwargs: Forwarded to `keras.metrics.Metric`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.metrics import FrechetDistance

    features = keras.Sequential([keras.Input((64,)), keras.layers.Dense(8)])
    metric = FrechetDistance(features)
    rng = np.random.default_rng(0)
    metric.update_state(real=rng.uniform(size=(100, 64)),
                        generated=rng.normal(size=(100, 64)))
    distance = float(metric.result())
    ```

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge
        to a Local Nash Equilibrium", NeurIPS 2017
        (https://arxiv.org/abs/1706.08500); Dowson and Landau, "The Fréchet
        distance between multivariate normal distributions", 1982.
    """

    def __init__(
        self,
        feature_model: keras.layers.Layer,
        feature_dim: int | None = None,
        name: str = "frechet_distance",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float64")
        super().__init__(name=name, **kwargs)
        if not callable(feature_model):
            raise ValueError(
                "`feature_model` must be a Keras model or layer. "
                f"Got: {feature_model!r}."
            )
        feature_dim = feature_dim or _feature_dim_of(feature_model)
        if feature_dim is None:
            raise ValueError(
                "FrechetDistance cannot tell the number of features of "
                "`feature_model`: pass `feature_dim=`, or give a functional "
                "model built from `keras.Input`."
            )
        self.feature_model = feature_model
        self.feature_dim = int(feature_dim)
        self._moments = {}
        for part in ("real", "generated"):
            self._moments[part] = (
                self.add_variable((), "zeros", self.dtype, name=f"{part}_count"),
                self.add_variable(
                    (self.feature_dim,), "zeros", self.dtype, name=f"{part}_sum"
                ),
                self.add_variable(
                    (self.feature_dim, self.feature_dim),
                    "zeros",
                    self.dtype,
                    name=f"{part}_outer_sum",
                ),
            )

    def update_state(self, real=None, generated=None, sample_weight=None) -> None:
        """Adds a batch of real and/or generated samples.

        Args:
            real: A batch of real samples, or `None`.
            generated: A batch of generated samples, or `None`.
            sample_weight: Not supported; must be `None`.
        """
        if sample_weight is not None:
            raise ValueError("FrechetDistance does not support `sample_weight`.")
        if real is None and generated is None:
            raise ValueError(
                "FrechetDistance.update_state() needs `real` or `generated` samples."
            )
        for part, samples in (("real", real), ("generated", generated)):
            if samples is not None:
                self._add(part, samples)

    def _add(self, part: str, samples) -> None:
        features = self.feature_model(samples, training=False)
        features = ops.cast(features, self.dtype)
        features = ops.reshape(features, (ops.shape(features)[0], -1))
        if features.shape[-1] != self.feature_dim:
            raise ValueError(
                f"`feature_model` returned {features.shape[-1]} features per "
                f"sample; FrechetDistance expects {self.feature_dim}."
            )
        count, total, outer = self._moments[part]
        count.assign_add(ops.cast(ops.shape(features)[0], self.dtype))
        total.assign_add(ops.sum(features, axis=0))
        outer.assign_add(ops.matmul(ops.transpose(features), features))

    def _gaussian(self, part: str):
        count, total, outer = self._moments[part]
        count = ops.convert_to_tensor(count)
        mean = total / ops.maximum(count, 1.0)
        centered = outer - count * ops.outer(mean, mean)
        return mean, centered / ops.maximum(count - 1.0, 1.0)

    def result(self):
        real_mean, real_cov = self._gaussian("real")
        fake_mean, fake_cov = self._gaussian("generated")
        # Tr((C_r C_g)^(1/2)) = Tr((S C_g S)^(1/2)) with S = C_r^(1/2): the
        # eigenvalues of a symmetric PSD matrix, which `eigh` handles stably.
        root = _symmetric_sqrt(real_cov)
        product = ops.matmul(ops.matmul(root, fake_cov), root)
        product = 0.5 * (product + ops.transpose(product))
        eigenvalues = ops.eigh(product)[0]
        trace_root = ops.sum(ops.sqrt(ops.maximum(eigenvalues, 0.0)))
        mean_term = ops.sum(ops.square(real_mean - fake_mean))
        return mean_term + ops.trace(real_cov) + ops.trace(fake_cov) - 2.0 * trace_root

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "feature_model": keras.saving.serialize_keras_object(self.feature_model),
            "feature_dim": self.feature_dim,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["feature_model"] = keras.saving.deserialize_keras_object(
            config["feature_model"]
        )
        return cls(**config)
