"""`SelfSupervisedModel`: two views, a representation loss, an online probe."""

import keras
from keras import ops

from keras_custom.core import CustomModel, all_gather, replica_random
from keras_custom.core.input_checks import check_single_input, class_ids, network_input
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.self_supervised.augmenter import small_image_augmenter


def _feature_dim(encoder) -> int:
    outputs = getattr(encoder, "outputs", None)
    if outputs and len(outputs) == 1 and len(outputs[0].shape) == 2:
        dim = outputs[0].shape[-1]
        if dim is not None:
            return int(dim)
    raise ValueError(
        "The online probe needs the encoder's number of features: give a built "
        "functional or Sequential encoder (from `keras.Input`) that returns "
        f"one tensor `(batch, features)`. Got: {encoder!r}."
    )


class SelfSupervisedModel(CustomModel):
    """The base of SimCLR, SimSiam, BYOL, Barlow Twins and VICReg.

    A subclass gives `representation_loss(view_1, view_2, training)`; this
    class makes the two views of each batch with `augmenter(x,
    training=True)`, minimizes that loss with the optimizer `optimizer`
    (every trainable variable but the probe's) as its `compute_loss`, logs
    it as `loss`, and runs the online linear probe when the batch has
    labels. `evaluate()` reports the same loss on random views of its data.

    **Online probe.** With `num_classes` given and labels in the data
    (`fit(x, y)`), a linear classifier on the encoder's features of the
    clean batch (inference mode, gradient stopped) is trained in the same
    step, after the representation's update, with its own optimizer
    `probe_optimizer`, and logs `probe_loss` and `probe_accuracy` (and
    their `val_` twins), so the quality of the representation shows in the
    progress bar. Without labels there is no probe.

    `model(x)` and `predict(x)` return the encoder's features. Augmentation
    is applied to the global batch under a distribution strategy (and
    losses that compare examples gather the batch), so training there
    equals training on one device.

    Args:
        encoder: A built model mapping inputs to features `(batch, d)`.
        augmenter: A Keras layer or model applied with `training=True` to
            make each view. Defaults to `small_image_augmenter()`, for
            images `(height, width, channels)` in `[0, 1]`.
        num_classes: Number of classes of the online probe; `None` for no
            probe.
        optimizer: Optimizer of the self-supervised loss. Defaults to Adam
            unless given to `compile(optimizer=...)`.
        probe_optimizer: Optimizer of the probe (default Adam).
        projector: A built model or layer mapping features to projections
            (`project()`), or `None` to project with the encoder alone.
        predictor: A built model or layer mapping projections to
            predictions, for the methods that have one, or `None`.
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    A new method is a subclass with a `representation_loss`; here the
    projections of the two views are pulled together (without SimSiam's
    predictor and stop-gradient this can collapse: an illustration only).

    ```python
    import keras
    import numpy as np
    from keras_custom.layers import ProjectionHead
    from keras_custom.losses import NegativeCosineSimilarity
    from keras_custom.self_supervised import SelfSupervisedModel


    class SiameseCosine(SelfSupervisedModel):
        def __init__(self, encoder, projector, **kwargs):
            super().__init__(encoder, projector=projector, **kwargs)
            self.similarity = NegativeCosineSimilarity()

        def representation_loss(self, view_1, view_2, training):
            return self.similarity(self.project(view_1, training),
                                   self.project(view_2, training))


    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(32, activation="relu")])
    projector = ProjectionHead(16, hidden_units=32)
    projector.build((None, 32))
    model = SiameseCosine(encoder, projector, num_classes=10)
    model.compile()
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(64, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 10, size=64)
    history = model.fit(images, labels, batch_size=32, verbose=0)
    print(sorted(history.history))  # ['loss', 'probe_accuracy', 'probe_loss']
    ```

    Reference:
        The online linear probe as in Chen et al., "A Simple Framework for
        Contrastive Learning of Visual Representations", ICML 2020
        (https://arxiv.org/abs/2002.05709), appendix B.6.
    """

    #: Constructor arguments that are Keras objects, serialized by `get_config`.
    _serialized_arguments = ("encoder", "augmenter", "projector", "predictor")
    #: The network whose inputs `export()` serves.
    serving_network = "encoder"
    #: `compute_loss` makes its own views of `x` and passes them through.
    predicts_before_loss = False

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: keras.layers.Layer | None = None,
        num_classes: int | None = None,
        optimizer: OptimizerLike = None,
        probe_optimizer: OptimizerLike = None,
        projector: keras.layers.Layer | None = None,
        predictor: keras.layers.Layer | None = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, **kwargs)
        if not isinstance(encoder, keras.layers.Layer):
            raise ValueError(f"`encoder` must be a Keras model. Got: {encoder!r}.")
        self.encoder = encoder
        self.augmenter = small_image_augmenter() if augmenter is None else augmenter
        if not callable(self.augmenter):
            raise ValueError(
                f"`augmenter` must be a Keras layer or model. Got: {augmenter!r}."
            )
        self.projector = projector
        self.predictor = predictor
        self.add_optimizer("optimizer", None, None, default="adam")
        self.add_tracker("loss")
        self.num_classes = None if num_classes is None else int(num_classes)
        if self.num_classes is not None:
            if self.num_classes < 2:
                raise ValueError(f"`num_classes` must be >= 2. Got: {num_classes!r}.")
            self.probe = keras.layers.Dense(self.num_classes, name="probe")
            self.probe.build((None, _feature_dim(encoder)))
            self.probe_loss_fn = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True
            )
            self.add_optimizer("probe_optimizer", probe_optimizer, self.probe, "adam")
            self.add_tracker("probe_loss")
            self.add_tracker("probe_accuracy")
        networks = (encoder, projector, predictor)
        self.built = all(part.built for part in networks if part is not None)

    # ------------------------------------------------------------------

    def call(self, x, training=False):
        return self.encoder(x, training=training)

    def augment(self, x):
        """One random view of the batch `x`."""
        return replica_random.apply_to_global_batch(
            lambda batch: self.augmenter(batch, training=True), x
        )

    def project(self, view, training: bool):
        """The projector's output on the encoder's features of `view`."""
        features = self.encoder(view, training=training)
        if self.projector is None:
            return features
        return self.projector(features, training=training)

    def gathered_projections(self, view_1, view_2, training: bool) -> tuple:
        """The projections of both views, gathered over the replicas.

        For a loss that is a statistic of the whole batch (SimCLR's
        negatives, Barlow Twins' cross-correlation, VICReg's variance and
        covariance): under a distribution strategy every replica computes
        it on the global batch, as one device would, and the gradients
        reach each replica's own examples.
        """
        return tuple(
            all_gather(self.project(view, training)) for view in (view_1, view_2)
        )

    def representation_loss(self, view_1, view_2, training: bool):
        """The self-supervised loss of two views of a batch (a batch mean).

        A scalar, or a dict of named terms with the total under `"loss"`
        (each term is logged; its tracker is added in `__init__`).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `representation_loss`."
        )

    def after_update(self) -> None:
        """Runs after each optimizer step (BYOL moves its target here)."""
        return None

    # ------------------------------------------------------------------
    # Steps: the representation loss is `compute_loss`; the probe follows.
    # ------------------------------------------------------------------

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """`representation_loss` of two random views of `x`, logged as `loss`."""
        if x is None:
            raise ValueError(f"Model '{self.name}' needs inputs: `fit(x)`.")
        check_single_input(x, self, network_input(self.encoder))
        return self.representation_loss(
            self.augment(x), self.augment(x), training=training
        )

    def train_step(self, data):
        logs = super().train_step(data)
        self.after_update()
        return {**logs, **self._probe_logs(data, training=True)}

    def test_step(self, data):
        return {**super().test_step(data), **self._probe_logs(data, training=False)}

    def _probe_logs(self, data, training: bool) -> dict:
        """`probe_loss` and `probe_accuracy`, the probe trained if `training`."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            return {}
        if self.num_classes is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' was given labels but has "
                "no online probe: pass `num_classes=` to the constructor to "
                "train one, or call `fit(x)` without labels."
            )
        labels = class_ids(y, self, "labels of the online probe")

        def probe_terms():
            features = ops.stop_gradient(self.encoder(x, training=False))
            logits = self.probe(features)
            hits = ops.equal(ops.argmax(logits, axis=-1), labels)
            return {
                "loss": self.probe_loss_fn(labels, logits),
                "probe_accuracy": ops.mean(ops.cast(hits, "float32")),
            }

        if training:
            terms = self.minimize(probe_terms, optimizer="probe_optimizer")
        else:
            terms = probe_terms()
        return {"probe_loss": terms.pop("loss"), **terms}

    # ------------------------------------------------------------------

    def get_config(self) -> dict:
        config = super().get_config()
        for key in self._serialized_arguments:
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        config["num_classes"] = self.num_classes
        return config
