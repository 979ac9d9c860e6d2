"""Hand-written JAX training loops: the baselines of JAX `fit()`.

Each loop does the mathematics of one keras_custom model in the style of the
Keras guide "Writing a training loop from scratch in JAX": the state is
plain arrays (the networks' trainable and non-trainable values, each
optimizer's variables, the running sums of the logged losses and a
`jax.random` key); one `jax.jit`-compiled pure function takes the state and
a batch and returns the new state; the networks run by `stateless_call`,
gradients come from `jax.value_and_grad` and updates from
`optimizer.stateless_apply`. `JaxLoop.train` is the guide's outer loop on
NumPy arrays: shuffle the rows every epoch, slice whole batches, call the
step, and read the losses' means at the end of the epoch.

Loops (the same networks, settings and order of operations as
`benchmarks.generative`'s and `benchmarks.fit_vs_loop`'s TensorFlow loops):

- ``mlp``: a classifier, sparse categorical cross-entropy from logits, Adam
  (what `CustomModel(inputs, outputs)` compiled with that loss does);
- ``gan``: a discriminator step, then a generator step on fresh latents;
- ``vae``: the negative ELBO with a reparameterized sample;
- ``dqn``: double DQN, Huber loss, a soft target update after every step.

Importing this module needs ``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import keras
import numpy as np
from keras import ops

from benchmarks import common

#: The settings the loops share with the TensorFlow benchmarks.
GAN_LATENT_DIM = 32
GAMMA = 0.99
TAU = 0.005
ACTIONS = 2


def network_state(network: keras.Model) -> tuple[list, list]:
    """`(trainable, non_trainable)` values of `network`."""
    return (
        [v.value for v in network.trainable_variables],
        [v.value for v in network.non_trainable_variables],
    )


def optimizer_state(optimizer: keras.optimizers.Optimizer, network: keras.Model):
    """The variables of `optimizer`, built for `network`'s trainable variables."""
    optimizer.build(network.trainable_variables)
    return [v.value for v in optimizer.variables]


class JaxLoop:
    """A hand-written JAX loop: state arrays and one jitted pure step.

    Subclasses set `names` (the logged losses), `networks_of` (how
    `networks` map to the loop's parts) and write `initial_state()` and
    `step(state, batch, key) -> (state, losses)`.
    """

    names: tuple[str, ...] = ()

    def __init__(self, networks: Sequence[keras.Model], seed: int = common.SEED):
        self.networks = list(networks)
        self.setup()
        self.state = self.initial_state()
        self.sums = jax.numpy.zeros(len(self.names))
        self.key = jax.random.PRNGKey(seed)
        self.compiled = jax.jit(self._step_and_record)

    def setup(self) -> None:
        """Creates the loop's optimizers and losses."""

    def initial_state(self) -> Any:
        raise NotImplementedError

    def step(self, state, batch, key) -> tuple[Any, Sequence]:
        raise NotImplementedError

    def _step_and_record(self, state, sums, key, batch):
        key, step_key = jax.random.split(key)
        state, losses = self.step(state, batch, step_key)
        return state, sums + ops.stack([ops.mean(v) for v in losses]), key

    def train(
        self, arrays: Any, batch_size: int, epochs: int, shuffle: bool = True
    ) -> dict[str, float]:
        """`epochs` epochs over whole batches of `arrays` (a NumPy structure).

        Returns the last epoch's mean of each logged loss.
        """
        rows = len(jax.tree_util.tree_leaves(arrays)[0])
        steps = rows // batch_size
        rng = np.random.default_rng(common.SEED)
        logs: dict[str, float] = {}
        for _ in range(epochs):
            order = rng.permutation(rows) if shuffle else np.arange(rows)
            sums = self.sums
            for index in range(steps):
                rows_of_batch = order[index * batch_size : (index + 1) * batch_size]
                batch = jax.tree_util.tree_map(
                    lambda a, rows=rows_of_batch: a[rows], arrays
                )
                self.state, sums, self.key = self.compiled(
                    self.state, sums, self.key, batch
                )
            means = np.asarray(sums) / steps
            logs = dict(zip(self.names, map(float, means), strict=True))
        return logs


def _cross_entropy() -> keras.losses.Loss:
    return keras.losses.BinaryCrossentropy(from_logits=True)


class MlpLoop(JaxLoop):
    """A classifier: sparse categorical cross-entropy from logits, Adam."""

    names = ("loss",)

    def setup(self):
        (self.network,) = self.networks
        self.optimizer = keras.optimizers.Adam()
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def initial_state(self):
        return (
            *network_state(self.network),
            optimizer_state(self.optimizer, self.network),
        )

    def step(self, state, batch, key):
        trainable, non_trainable, optimizer_variables = state
        x, y = batch

        def loss_of(trainable):
            logits, updated = self.network.stateless_call(
                trainable, non_trainable, x, training=True
            )
            return self.loss(y, logits), updated

        (loss, non_trainable), gradients = jax.value_and_grad(loss_of, has_aux=True)(
            trainable
        )
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        return (trainable, non_trainable, optimizer_variables), (loss,)


class GanLoop(JaxLoop):
    """The DCGAN tutorial's step: discriminator, then generator on fresh latents."""

    names = ("d_loss", "g_loss")

    def setup(self):
        self.generator, self.discriminator = self.networks
        self.d_optimizer = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)
        self.g_optimizer = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)
        self.cross_entropy = _cross_entropy()

    def initial_state(self):
        return (
            *network_state(self.generator),
            optimizer_state(self.g_optimizer, self.generator),
            *network_state(self.discriminator),
            optimizer_state(self.d_optimizer, self.discriminator),
        )

    def step(self, state, real, key):
        g_trainable, g_non_trainable, g_slots, d_trainable, d_non_trainable, d_slots = (
            state
        )
        batch_size = real.shape[0]
        d_key, g_key = jax.random.split(key)
        latents = jax.random.normal(d_key, (batch_size, GAN_LATENT_DIM))
        fake, g_non_trainable = self.generator.stateless_call(
            g_trainable, g_non_trainable, latents, training=True
        )

        def d_loss_of(d_trainable):
            real_logits, updated = self.discriminator.stateless_call(
                d_trainable, d_non_trainable, real, training=True
            )
            fake_logits, updated = self.discriminator.stateless_call(
                d_trainable, updated, fake, training=True
            )
            loss = self.cross_entropy(
                ops.ones_like(real_logits), real_logits
            ) + self.cross_entropy(ops.zeros_like(fake_logits), fake_logits)
            return loss, updated

        (d_loss, d_non_trainable), gradients = jax.value_and_grad(
            d_loss_of, has_aux=True
        )(d_trainable)
        d_trainable, d_slots = self.d_optimizer.stateless_apply(
            d_slots, gradients, d_trainable
        )

        latents = jax.random.normal(g_key, (batch_size, GAN_LATENT_DIM))

        def g_loss_of(g_trainable):
            fake, g_updated = self.generator.stateless_call(
                g_trainable, g_non_trainable, latents, training=True
            )
            logits, d_updated = self.discriminator.stateless_call(
                d_trainable, d_non_trainable, fake, training=True
            )
            loss = self.cross_entropy(ops.ones_like(logits), logits)
            return loss, (g_updated, d_updated)

        (g_loss, (g_non_trainable, d_non_trainable)), gradients = jax.value_and_grad(
            g_loss_of, has_aux=True
        )(g_trainable)
        g_trainable, g_slots = self.g_optimizer.stateless_apply(
            g_slots, gradients, g_trainable
        )
        state = (
            g_trainable,
            g_non_trainable,
            g_slots,
            d_trainable,
            d_non_trainable,
            d_slots,
        )
        return state, (d_loss, g_loss)


class VaeLoop(JaxLoop):
    """The Keras VAE example: the negative ELBO, one Adam on both networks."""

    names = ("loss", "reconstruction_loss", "kl_loss")

    def setup(self):
        self.encoder, self.decoder = self.networks
        self.optimizer = keras.optimizers.Adam()

    def initial_state(self):
        self.optimizer.build(
            self.encoder.trainable_variables + self.decoder.trainable_variables
        )
        return (
            *network_state(self.encoder),
            *network_state(self.decoder),
            [v.value for v in self.optimizer.variables],
        )

    def step(self, state, x, key):
        e_trainable, e_non_trainable, d_trainable, d_non_trainable, slots = state
        split = len(e_trainable)

        def loss_of(trainable):
            (z_mean, z_log_var), e_updated = self.encoder.stateless_call(
                trainable[:split], e_non_trainable, x, training=True
            )
            noise = jax.random.normal(key, z_mean.shape)
            z = z_mean + ops.exp(0.5 * z_log_var) * noise
            reconstruction, d_updated = self.decoder.stateless_call(
                trainable[split:], d_non_trainable, z, training=True
            )
            reconstruction_loss = ops.mean(
                ops.sum(
                    keras.losses.binary_crossentropy(
                        x[..., None], reconstruction[..., None]
                    ),
                    axis=1,
                )
            )
            kl_loss = ops.mean(
                -0.5
                * ops.sum(
                    1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1
                )
            )
            loss = reconstruction_loss + kl_loss
            return loss, (e_updated, d_updated, reconstruction_loss, kl_loss)

        (loss, aux), gradients = jax.value_and_grad(loss_of, has_aux=True)(
            e_trainable + d_trainable
        )
        e_non_trainable, d_non_trainable, reconstruction_loss, kl_loss = aux
        trainable, slots = self.optimizer.stateless_apply(
            slots, gradients, e_trainable + d_trainable
        )
        state = (
            trainable[:split],
            e_non_trainable,
            trainable[split:],
            d_non_trainable,
            slots,
        )
        return state, (loss, reconstruction_loss, kl_loss)


class DqnLoop(JaxLoop):
    """Double DQN with a soft target update after every step (the recipe's)."""

    names = ("loss", "q_mean")

    def setup(self):
        (self.q_network,) = self.networks
        self.optimizer = keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm=10.0)
        self.huber = keras.losses.Huber(delta=1.0)

    def initial_state(self):
        trainable, non_trainable = network_state(self.q_network)
        target = [v.value for v in self.q_network.weights]
        return (
            trainable,
            non_trainable,
            optimizer_state(self.optimizer, self.q_network),
            target,
        )

    def step(self, state, batch, key):
        trainable, non_trainable, slots, target = state
        split = len(trainable)
        target_trainable, target_non_trainable = target[:split], target[split:]
        next_observations = batch["next_observation"]
        next_target_q, _ = self.q_network.stateless_call(
            target_trainable, target_non_trainable, next_observations
        )

        def loss_of(trainable):
            q_values, updated = self.q_network.stateless_call(
                trainable, non_trainable, batch["observation"], training=True
            )
            actions = ops.cast(batch["action"], "int32")
            q_taken = ops.sum(q_values * ops.one_hot(actions, ACTIONS), axis=-1)
            next_q_online, updated = self.q_network.stateless_call(
                trainable, updated, next_observations, training=True
            )
            next_actions = ops.argmax(jax.lax.stop_gradient(next_q_online), axis=-1)
            next_q = ops.sum(
                next_target_q * ops.one_hot(next_actions, ACTIONS), axis=-1
            )
            continues = 1.0 - ops.cast(batch["terminated"], "float32")
            targets = jax.lax.stop_gradient(
                batch["reward"] + GAMMA * continues * next_q
            )
            loss = self.huber(targets[:, None], q_taken[:, None])
            return loss, (updated, ops.mean(q_taken))

        (loss, (non_trainable, q_mean)), gradients = jax.value_and_grad(
            loss_of, has_aux=True
        )(trainable)
        trainable, slots = self.optimizer.stateless_apply(slots, gradients, trainable)
        target = [
            (1.0 - TAU) * old + TAU * new
            for old, new in zip(target, trainable + non_trainable, strict=True)
        ]
        return (trainable, non_trainable, slots, target), (loss, q_mean)


LOOPS: dict[str, Callable[[Sequence[keras.Model]], JaxLoop]] = {
    "keras_mlp": MlpLoop,
    "mlp": MlpLoop,
    "gan": GanLoop,
    "vae": VaeLoop,
    "dqn": DqnLoop,
}
