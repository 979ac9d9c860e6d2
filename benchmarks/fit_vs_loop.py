"""The other models' `fit()` against hand-written `tf.function` loops.

`generative.py` covers `GAN` and `VAE`, `self_supervised.py` the four
self-supervised models. This script does the same for the rest of
keras_custom: `WGANGP`, `ConditionalGAN`, `Distiller`, `FixMatch`,
`MeanTeacher`, `SharpnessAwareModel`, `AdversarialModel`, `DQN`,
`ActorCritic`, `DiffusionModel` and `PPO`. Each model is trained in three
forms on the same networks, the same initial weights and the same
`tf.data.Dataset` of batches:

- ``loop``: a ``@tf.function`` train step written by hand with
  ``tf.GradientTape`` and ``apply_gradients``, doing the model's mathematics
  (read from its source in ``keras_custom/``), with a ``keras.metrics.Mean``
  per logged value, called once per batch. This is the baseline.
- ``fit``: the keras_custom model, ``compile()``, ``fit(dataset)``.
- ``fit_spe16``: the same with ``compile(steps_per_execution=16)``.

The data are the bundled 8x8 digits (flattened, divided by 16, tiled to
``--samples`` rows) for the image models (scaled to [-1, 1] for
`DiffusionModel`, as its recipes do); DQN, ActorCritic and PPO train on
fixed random transition batches (a ``tf.data.Dataset`` of dict batches,
CartPole-shaped: 4 observations, 2 actions), so the update step is timed,
not the environment.

`DiffusionModel` is benchmarked with the recipes' process (1000 steps,
cosine schedule, epsilon prediction, Adam 2e-3) but a small denoiser
(`TimestepEmbedding(32)`, two dense layers of 128), a constant
``ema_decay`` of 0.999 and no Min-SNR weighting (``min_snr_gamma=None``),
so the loop's step is the plain one: a random time step and noise per
example, ``x_t``, the network's prediction of the noise, its mean squared
error, one Adam step, then the moving average of the network. `PPO` is
benchmarked as `cartpole_ppo` configures it (clip 0.2, value weight 0.5,
entropy weight 0, Adam 1e-3 with epsilon 1e-5 and global clipnorm 0.5,
minibatches of 256 transitions) on fixed minibatches that carry the
behaviour policy's ``log_probability``; the loop does one step of the
clipped surrogate, the value loss and the entropy, with the advantages
normalized over each minibatch.

As in ``self_supervised.py``, each form is built, compiled and warmed up
(tracing) once; then the forms are timed in alternating rounds in one
process (the order reversed every other round), each run timing a call of
one epoch and a call of ``--epochs`` epochs with ``time.perf_counter`` and
``time.process_time``. The tables are ``generative.py``'s (both come from
`benchmarks.common`): the median
per-round ratio of time per step to the loop's, wall clock and CPU, and the
speed-up of ``steps_per_execution=16``. The random draws of the loop
(``tf.random``) and of the models (their ``SeedGenerator``) differ, so the
final losses agree only roughly. ``main()`` returns the results as a dict
(what ``--json`` writes), in the layout of ``generative.py``'s.

Usage::

    .venv/bin/python -m benchmarks.fit_vs_loop [--rounds 7] [--epochs 6]
        [--batch-size 64] [--samples 4096] [--models wgan_gp,dqn,...]
        [--json results.json]
"""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import keras_custom
from benchmarks import common

PIXELS = 64
CLASSES = 10
HIDDEN = 128
LATENT = 32
MODELS = common.FIT_VS_LOOP_MODELS

# Model settings (the library's defaults unless noted).
CRITIC_STEPS = 5
GP_WEIGHT = 10.0
TEMPERATURE = 3.0
ALPHA = 0.1
THRESHOLD = 0.95
UNLABELED_RATIO = 2
EMA_DECAY = 0.99
RHO = 0.05
EPSILON = 0.1
ADVERSARIAL_WEIGHT = 0.5
OBSERVATIONS = 4
ACTIONS = 2
DQN_BATCH = 256
A2C_BATCH = 128
GAMMA = 0.99
TAU = 0.005
VALUE_WEIGHT = 0.5
ENTROPY_WEIGHT = 0.01
# DiffusionModel: the recipes' process and optimizer, a small denoiser.
DIFFUSION_TIMESTEPS = 1000
DIFFUSION_SCHEDULE = "cosine"
DIFFUSION_LEARNING_RATE = 2e-3
DIFFUSION_EMA_DECAY = 0.999
TIME_FEATURES = 32
# PPO: the cartpole_ppo recipe (8 environments x 32 steps, one minibatch).
PPO_BATCH = 256
PPO_CLIP_RATIO = 0.2
PPO_VALUE_WEIGHT = 0.5
PPO_ENTROPY_WEIGHT = 0.0


# ----------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------


def make_dataset(model: str, samples: int, batch_size: int) -> tf.data.Dataset:
    """The batches of `model`, shared by the loop and `fit()`.

    Image models: the digits shuffled every epoch, then batched. The
    semi-supervised models zip labeled batches with unlabeled batches
    `UNLABELED_RATIO` times larger into `((x_labeled, x_unlabeled), y)`.
    DQN and ActorCritic: fixed transition batches, not shuffled.
    """
    rng = np.random.default_rng(common.SEED)
    if model in ("dqn", "actor_critic", "ppo"):
        size = {"dqn": DQN_BATCH, "actor_critic": A2C_BATCH, "ppo": PPO_BATCH}[model]
        count = (samples // batch_size) * size
        observations = rng.normal(size=(count, OBSERVATIONS)).astype("float32")
        actions = rng.integers(0, ACTIONS, size=count).astype("int32")
        if model == "dqn":
            transitions = {
                "observation": observations,
                "action": actions,
                "reward": np.ones(count, "float32"),
                "next_observation": rng.normal(size=(count, OBSERVATIONS)).astype(
                    "float32"
                ),
                "terminated": rng.random(count) < 0.05,
            }
        else:
            transitions = {
                "observation": observations,
                "action": actions,
                "advantage": rng.normal(size=count).astype("float32"),
                "return": rng.normal(size=count).astype("float32"),
            }
        if model == "ppo":
            # The behaviour policy's log-probability: near log(1/2).
            transitions["log_probability"] = (
                np.log(0.5) + 0.1 * rng.normal(size=count)
            ).astype("float32")
        return tf.data.Dataset.from_tensor_slices(transitions).batch(size)
    samples = common.whole_batches(samples, batch_size)
    x, y = common.tiled_digits(samples)
    if model in ("fixmatch", "mean_teacher"):
        x_unlabeled, _ = common.tiled_digits(samples * UNLABELED_RATIO)
        return tf.data.Dataset.zip(
            common.shuffled_batches((x, y), batch_size),
            common.shuffled_batches(
                x_unlabeled[::-1].copy(), UNLABELED_RATIO * batch_size
            ),
        ).map(lambda labeled, x_u: ((labeled[0], x_u), labeled[1]))
    if model == "wgan_gp":
        return common.shuffled_batches(x, batch_size)
    if model == "diffusion":
        return common.shuffled_batches(2.0 * x - 1.0, batch_size)
    return common.shuffled_batches((x, y), batch_size)


# ----------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------


def mlp(inputs: int, hidden: list[int], outputs: int, activation="relu", last=None):
    layers = [keras.Input((inputs,))]
    layers += [keras.layers.Dense(units, activation=activation) for units in hidden]
    layers.append(keras.layers.Dense(outputs, activation=last))
    return keras.Sequential(layers)


def conditioned(size: int, outputs: int, activation=None) -> keras.Model:
    """`[features, labels] -> outputs`: one-hot labels concatenated."""
    features = keras.Input((size,))
    labels = keras.Input((), dtype="int32")
    onehot = keras.layers.CategoryEncoding(CLASSES, output_mode="one_hot")(labels)
    hidden = keras.layers.Dense(HIDDEN, activation="relu")(
        keras.layers.Concatenate()([features, onehot])
    )
    out = keras.layers.Dense(outputs, activation=activation)(hidden)
    return keras.Model([features, labels], out)


def denoiser() -> keras.Model:
    """`[x_t, t] -> predicted noise`: a small version of the recipes' MLP."""
    samples = keras.Input((PIXELS,))
    timesteps = keras.Input((), dtype="int32")
    time = keras_custom.layers.TimestepEmbedding(TIME_FEATURES)(timesteps)
    hidden = keras.layers.Add()(
        [
            keras.layers.Dense(HIDDEN)(samples),
            keras.layers.Dense(HIDDEN, activation="silu")(time),
        ]
    )
    hidden = keras.layers.Dense(HIDDEN, activation="silu")(
        keras.layers.Activation("silu")(hidden)
    )
    return keras.Model([samples, timesteps], keras.layers.Dense(PIXELS)(hidden))


def build_networks(model: str) -> list[keras.Model]:
    """Fresh networks of `model` (random weights)."""
    if model == "wgan_gp":
        return [mlp(LATENT, [HIDDEN], PIXELS, last="sigmoid"), mlp(PIXELS, [HIDDEN], 1)]
    if model == "conditional_gan":
        return [conditioned(LATENT, PIXELS, "sigmoid"), conditioned(PIXELS, 1)]
    if model == "distiller":
        # teacher, student
        return [mlp(PIXELS, [256], CLASSES), mlp(PIXELS, [32], CLASSES)]
    if model in ("fixmatch", "mean_teacher"):
        return [mlp(PIXELS, [HIDDEN], CLASSES)]
    if model in ("sam", "adversarial"):
        return [mlp(PIXELS, [256, 256], CLASSES)]
    if model == "dqn":
        return [mlp(OBSERVATIONS, [256, 256], ACTIONS)]
    if model == "diffusion":
        return [denoiser()]
    # actor_critic and ppo: policy, value
    return [
        mlp(OBSERVATIONS, [64, 64], ACTIONS, activation="tanh"),
        mlp(OBSERVATIONS, [64, 64], 1, activation="tanh"),
    ]


def fresh_networks(model: str, weights: dict) -> list[keras.Model]:
    networks = build_networks(model)
    common.set_weights(networks, weights[model])
    return networks


def wgan_adam() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=1e-4, beta_1=0.0, beta_2=0.9)


def dcgan_adam() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


def rl_adam(model: str) -> keras.optimizers.Optimizer:
    """The CartPole recipes' optimizers."""
    if model == "ppo":
        return keras.optimizers.Adam(
            learning_rate=1e-3, epsilon=1e-5, global_clipnorm=0.5
        )
    clipnorm = 10.0 if model == "dqn" else 0.5
    return keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm=clipnorm)


def frozen_copy(network: keras.Model) -> keras.Model:
    """A clone with the same weights, for a moving-average target/teacher."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    copy.trainable = False
    return copy


# ----------------------------------------------------------------------
# The baselines: hand-written tf.function loops
# ----------------------------------------------------------------------

sparse_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def accuracy(y, logits):
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(
        tf.cast(tf.equal(tf.cast(y, tf.int32), predictions), "float32")
    )


class Loop:
    """A hand-written loop: networks, optimizers, `Mean` trackers, a step."""

    names: tuple[str, ...] = ()

    def __init__(self, networks: list[keras.Model]):
        self.networks = networks
        self.trackers = [keras.metrics.Mean(name=name) for name in self.names]
        self.setup()
        self.train_step = tf.function(self.step)

    def setup(self) -> None:
        self.optimizer = keras.optimizers.Adam()

    def record(self, *values) -> None:
        for tracker, value in zip(self.trackers, values, strict=True):
            tracker.update_state(value)

    def step(self, batch) -> None:
        raise NotImplementedError


class WganGpLoop(Loop):
    """Gulrajani et al.'s algorithm 1, in the order of `WGANGP.train_step`."""

    names = ("d_loss", "g_loss", "gradient_penalty")

    def setup(self):
        self.d_optimizer, self.g_optimizer = wgan_adam(), wgan_adam()

    def step(self, real):
        generator, critic = self.networks
        batch_size = tf.shape(real)[0]
        d_losses, penalties = [], []
        for _ in range(CRITIC_STEPS):
            fake = generator(tf.random.normal([batch_size, LATENT]), training=True)
            with tf.GradientTape() as tape:
                real_scores = critic(real, training=True)
                fake_scores = critic(fake, training=True)
                alpha = tf.random.uniform([batch_size, 1])
                interpolates = real + alpha * (fake - real)
                with tf.GradientTape() as inner:
                    inner.watch(interpolates)
                    scores = critic(interpolates, training=True)
                gradients = inner.gradient(scores, interpolates)
                norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=1) + 1e-12)
                penalty = tf.reduce_mean(tf.square(norms - 1.0))
                d_loss = (
                    tf.reduce_mean(fake_scores)
                    - tf.reduce_mean(real_scores)
                    + GP_WEIGHT * penalty
                )
            common.apply_gradients(
                self.d_optimizer, tape, d_loss, critic.trainable_variables
            )
            d_losses.append(d_loss)
            penalties.append(penalty)
        latents = tf.random.normal([batch_size, LATENT])
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(
                critic(generator(latents, training=True), training=True)
            )
        common.apply_gradients(
            self.g_optimizer, tape, g_loss, generator.trainable_variables
        )
        self.record(
            tf.reduce_mean(tf.stack(d_losses)),
            g_loss,
            tf.reduce_mean(tf.stack(penalties)),
        )


class ConditionalGanLoop(Loop):
    """The DCGAN tutorial's step with labels given to both networks."""

    names = ("d_loss", "g_loss")

    def setup(self):
        self.d_optimizer, self.g_optimizer = dcgan_adam(), dcgan_adam()

    def step(self, batch):
        generator, discriminator = self.networks
        real, labels = batch
        labels = tf.reshape(tf.cast(labels, tf.int32), (-1,))
        batch_size = tf.shape(real)[0]
        fake = generator(
            [tf.random.normal([batch_size, LATENT]), labels], training=True
        )
        with tf.GradientTape() as tape:
            d_loss = common.discriminator_loss(
                discriminator([real, labels], training=True),
                discriminator([fake, labels], training=True),
            )
        common.apply_gradients(
            self.d_optimizer, tape, d_loss, discriminator.trainable_variables
        )
        latents = tf.random.normal([batch_size, LATENT])
        with tf.GradientTape() as tape:
            fake = generator([latents, labels], training=True)
            g_loss = common.generator_loss(discriminator([fake, labels], training=True))
        common.apply_gradients(
            self.g_optimizer, tape, g_loss, generator.trainable_variables
        )
        self.record(d_loss, g_loss)


class DistillerLoop(Loop):
    """Hinton et al.: labels plus the teacher's softmax at a temperature."""

    names = ("loss", "student_loss", "distillation_loss")

    def setup(self):
        super().setup()
        self.kl = keras.losses.KLDivergence()

    def step(self, batch):
        teacher, student = self.networks
        x, y = batch
        with tf.GradientTape() as tape:
            student_logits = student(x, training=True)
            teacher_logits = tf.stop_gradient(teacher(x, training=False))
            student_loss = sparse_ce(y, student_logits)
            distillation_loss = self.kl(
                tf.nn.softmax(teacher_logits / TEMPERATURE),
                tf.nn.softmax(student_logits / TEMPERATURE),
            ) * (TEMPERATURE**2)
            loss = ALPHA * student_loss + (1.0 - ALPHA) * distillation_loss
        common.apply_gradients(self.optimizer, tape, loss, student.trainable_variables)
        self.record(loss, student_loss, distillation_loss)


def weak_augmenter() -> keras.layers.Layer:
    return keras.layers.GaussianNoise(0.05)


def strong_augmenter() -> keras.layers.Layer:
    return keras.layers.GaussianNoise(0.3)


class FixMatchLoop(Loop):
    """Sohn et al.: confident weak-view predictions label the strong view."""

    names = ("loss", "supervised_loss", "unsupervised_loss", "mask_rate")

    def setup(self):
        super().setup()
        self.weak, self.strong = weak_augmenter(), strong_augmenter()

    def step(self, batch):
        (model,) = self.networks
        (x_labeled, x_unlabeled), y = batch
        count, unlabeled = tf.shape(x_labeled)[0], tf.shape(x_unlabeled)[0]
        with tf.GradientTape() as tape:
            inputs = tf.concat(
                [
                    self.weak(x_labeled, training=True),
                    self.weak(x_unlabeled, training=True),
                    self.strong(x_unlabeled, training=True),
                ],
                axis=0,
            )
            outputs = model(inputs, training=True)
            supervised_loss = sparse_ce(y, outputs[:count])
            probabilities = tf.nn.softmax(
                tf.stop_gradient(outputs[count : count + unlabeled])
            )
            mask = tf.cast(
                tf.reduce_max(probabilities, axis=-1) >= THRESHOLD, "float32"
            )
            unsupervised_loss = sparse_ce(
                tf.argmax(probabilities, axis=-1),
                outputs[count + unlabeled :],
                sample_weight=mask,
            )
            loss = supervised_loss + unsupervised_loss
        common.apply_gradients(self.optimizer, tape, loss, model.trainable_variables)
        self.record(loss, supervised_loss, unsupervised_loss, tf.reduce_mean(mask))


class MeanTeacherLoop(Loop):
    """Tarvainen and Valpola: consistency with a moving-average teacher."""

    names = ("loss", "supervised_loss", "consistency_loss")

    def setup(self):
        super().setup()
        self.noise = keras.layers.GaussianNoise(0.1)
        self.mse = keras.losses.MeanSquaredError()
        self.teacher = frozen_copy(self.networks[0])

    def noisy(self, x_labeled, x_unlabeled):
        return tf.concat(
            [
                self.noise(x_labeled, training=True),
                self.noise(x_unlabeled, training=True),
            ],
            axis=0,
        )

    def step(self, batch):
        (student,) = self.networks
        (x_labeled, x_unlabeled), y = batch
        with tf.GradientTape() as tape:
            teacher_logits = tf.stop_gradient(
                self.teacher(self.noisy(x_labeled, x_unlabeled), training=True)
            )
            student_logits = student(self.noisy(x_labeled, x_unlabeled), training=True)
            supervised_loss = sparse_ce(y, student_logits[: tf.shape(x_labeled)[0]])
            consistency_loss = self.mse(
                tf.nn.softmax(teacher_logits), tf.nn.softmax(student_logits)
            )
            loss = supervised_loss + consistency_loss
        common.apply_gradients(self.optimizer, tape, loss, student.trainable_variables)
        common.moving_average(
            zip(self.teacher.weights, student.weights, strict=True), EMA_DECAY
        )
        self.record(loss, supervised_loss, consistency_loss)


class SamLoop(Loop):
    """Foret et al.: the gradient at the worst point of a `rho` ball."""

    names = ("loss",)

    def step(self, batch):
        (model,) = self.networks
        x, y = batch
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            loss = sparse_ce(y, model(x, training=True))
        gradients = tape.gradient(loss, variables)
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in gradients]))
        scale = tf.where(tf.math.is_finite(norm), RHO / (norm + 1e-12), 0.0)
        perturbations = [scale * g for g in gradients]
        for variable, perturbation in zip(variables, perturbations, strict=True):
            variable.assign_add(perturbation)
        with tf.GradientTape() as tape:
            perturbed_loss = sparse_ce(y, model(x, training=True))
        gradients = tape.gradient(perturbed_loss, variables)
        for variable, perturbation in zip(variables, perturbations, strict=True):
            variable.assign_sub(perturbation)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self.record(loss)


class AdversarialLoop(Loop):
    """Goodfellow et al.: FGSM examples, clean and adversarial loss mixed."""

    names = (
        "loss",
        "clean_loss",
        "adversarial_loss",
        "clean_accuracy",
        "adversarial_accuracy",
    )

    def step(self, batch):
        (model,) = self.networks
        x, y = batch
        with tf.GradientTape() as tape:
            tape.watch(x)
            attack_loss = sparse_ce(y, model(x, training=False))
        gradient = tape.gradient(attack_loss, x)
        x_adv = x + EPSILON * tf.sign(gradient)
        x_adv = tf.clip_by_value(x_adv, x - EPSILON, x + EPSILON)
        x_adv = tf.stop_gradient(tf.clip_by_value(x_adv, 0.0, 1.0))
        with tf.GradientTape() as tape:
            clean_logits = model(x, training=True)
            adversarial_logits = model(x_adv, training=True)
            clean_loss = sparse_ce(y, clean_logits)
            adversarial_loss = sparse_ce(y, adversarial_logits)
            loss = (
                1.0 - ADVERSARIAL_WEIGHT
            ) * clean_loss + ADVERSARIAL_WEIGHT * adversarial_loss
        common.apply_gradients(self.optimizer, tape, loss, model.trainable_variables)
        self.record(
            loss,
            clean_loss,
            adversarial_loss,
            accuracy(y, clean_logits),
            accuracy(y, adversarial_logits),
        )


class DqnLoop(Loop):
    """Double DQN with a soft target update after every step (the recipe's)."""

    names = ("loss", "q_mean")

    def setup(self):
        self.optimizer = rl_adam("dqn")
        self.huber = keras.losses.Huber(delta=1.0)
        self.target = frozen_copy(self.networks[0])

    def step(self, batch):
        (q_network,) = self.networks
        with tf.GradientTape() as tape:
            q_values = q_network(batch["observation"], training=True)
            actions = tf.cast(batch["action"], tf.int32)
            q_taken = tf.reduce_sum(q_values * tf.one_hot(actions, ACTIONS), axis=-1)
            next_observations = batch["next_observation"]
            next_target_q = self.target(next_observations)
            next_actions = tf.argmax(
                tf.stop_gradient(q_network(next_observations, training=True)), axis=-1
            )
            next_q = tf.reduce_sum(
                next_target_q * tf.one_hot(next_actions, ACTIONS), axis=-1
            )
            continues = 1.0 - tf.cast(batch["terminated"], "float32")
            targets = tf.stop_gradient(batch["reward"] + GAMMA * continues * next_q)
            loss = self.huber(targets[:, None], q_taken[:, None])
        common.apply_gradients(
            self.optimizer, tape, loss, q_network.trainable_variables
        )
        common.moving_average(
            zip(self.target.weights, q_network.weights, strict=True), 1.0 - TAU
        )
        self.record(loss, tf.reduce_mean(q_taken))


class ActorCriticLoop(Loop):
    """A2C: policy gradient on advantages, value regression, entropy bonus."""

    names = ("loss", "policy_loss", "value_loss", "entropy")

    def setup(self):
        self.optimizer = rl_adam("actor_critic")
        self.mse = keras.losses.MeanSquaredError()

    def step(self, batch):
        policy, value = self.networks
        variables = policy.trainable_variables + value.trainable_variables
        actions = tf.cast(batch["action"], tf.int32)
        with tf.GradientTape() as tape:
            observations = batch["observation"]
            logits = policy(observations, training=True)
            values = tf.reshape(value(observations, training=True), (-1,))
            log_probabilities = tf.nn.log_softmax(logits, axis=-1)
            taken = tf.reduce_sum(
                log_probabilities * tf.one_hot(actions, ACTIONS), axis=-1
            )
            policy_loss = -tf.reduce_mean(taken * batch["advantage"])
            value_loss = self.mse(batch["return"][:, None], values[:, None])
            entropy = -tf.reduce_mean(
                tf.reduce_sum(tf.exp(log_probabilities) * log_probabilities, -1)
            )
            loss = policy_loss + VALUE_WEIGHT * value_loss - ENTROPY_WEIGHT * entropy
        common.apply_gradients(self.optimizer, tape, loss, variables)
        self.record(loss, policy_loss, value_loss, entropy)


class DiffusionLoop(Loop):
    """Ho et al.'s training step (epsilon prediction), then the EMA update."""

    names = ("loss",)

    def setup(self):
        self.optimizer = keras.optimizers.Adam(DIFFUSION_LEARNING_RATE)
        self.ema = frozen_copy(self.networks[0])
        alpha_bars = keras_custom.generative.diffusion_schedule.alpha_bars(
            DIFFUSION_TIMESTEPS, DIFFUSION_SCHEDULE
        )
        self.alpha_bar = tf.constant(alpha_bars, "float32")

    def step(self, x):
        (network,) = self.networks
        batch_size = tf.shape(x)[0]
        timesteps = tf.minimum(
            tf.cast(
                tf.floor(tf.random.uniform([batch_size]) * DIFFUSION_TIMESTEPS),
                tf.int32,
            ),
            DIFFUSION_TIMESTEPS - 1,
        )
        noise = tf.random.normal(tf.shape(x))
        alpha_bar = tf.gather(self.alpha_bar, timesteps)[:, None]
        x_t = tf.sqrt(alpha_bar) * x + tf.sqrt(1.0 - alpha_bar) * noise
        with tf.GradientTape() as tape:
            prediction = network([x_t, timesteps], training=True)
            loss = tf.reduce_mean(
                tf.reduce_mean(tf.square(prediction - noise), axis=-1)
            )
        common.apply_gradients(self.optimizer, tape, loss, network.trainable_variables)
        decay = tf.constant(DIFFUSION_EMA_DECAY, "float32")
        common.moving_average(
            zip(self.ema.weights, network.weights, strict=True), decay
        )
        self.record(loss)


class PpoLoop(Loop):
    """PPO-Clip: one minibatch step of the clipped surrogate, value, entropy."""

    names = (
        "loss",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
    )

    def setup(self):
        self.optimizer = rl_adam("ppo")

    def step(self, batch):
        policy, value = self.networks
        variables = policy.trainable_variables + value.trainable_variables
        actions = tf.cast(batch["action"], tf.int32)
        advantages = batch["advantage"]
        advantages = (advantages - tf.reduce_mean(advantages)) / (
            tf.math.reduce_std(advantages) + 1e-8
        )
        with tf.GradientTape() as tape:
            observations = batch["observation"]
            log_probabilities = tf.nn.log_softmax(
                policy(observations, training=True), axis=-1
            )
            values = tf.reshape(value(observations, training=True), (-1,))
            taken = tf.reduce_sum(
                log_probabilities * tf.one_hot(actions, ACTIONS), axis=-1
            )
            log_ratio = taken - batch["log_probability"]
            ratio = tf.exp(log_ratio)
            clipped = tf.clip_by_value(
                ratio, 1.0 - PPO_CLIP_RATIO, 1.0 + PPO_CLIP_RATIO
            )
            policy_loss = -tf.reduce_mean(
                tf.minimum(ratio * advantages, clipped * advantages)
            )
            value_loss = tf.reduce_mean(tf.square(batch["return"] - values))
            entropy = -tf.reduce_mean(
                tf.reduce_sum(tf.exp(log_probabilities) * log_probabilities, -1)
            )
            loss = (
                policy_loss
                + PPO_VALUE_WEIGHT * value_loss
                - PPO_ENTROPY_WEIGHT * entropy
            )
        common.apply_gradients(self.optimizer, tape, loss, variables)
        log_ratio, ratio = tf.stop_gradient(log_ratio), tf.stop_gradient(ratio)
        self.record(
            loss,
            policy_loss,
            value_loss,
            entropy,
            tf.reduce_mean((ratio - 1.0) - log_ratio),
            tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > PPO_CLIP_RATIO, "float32")),
        )


LOOPS: dict[str, type[Loop]] = {
    "wgan_gp": WganGpLoop,
    "conditional_gan": ConditionalGanLoop,
    "distiller": DistillerLoop,
    "fixmatch": FixMatchLoop,
    "mean_teacher": MeanTeacherLoop,
    "sam": SamLoop,
    "adversarial": AdversarialLoop,
    "dqn": DqnLoop,
    "actor_critic": ActorCriticLoop,
    "diffusion": DiffusionLoop,
    "ppo": PpoLoop,
}


# ----------------------------------------------------------------------
# The contenders: keras_custom models trained by fit()
# ----------------------------------------------------------------------


def library_model(model: str, networks: list[keras.Model]) -> keras.Model:
    """The keras_custom model of `model` on `networks`, not compiled."""
    kc = keras_custom
    if model == "wgan_gp":
        return kc.WGANGP(
            *networks,
            latent_dim=LATENT,
            d_optimizer=wgan_adam(),
            g_optimizer=wgan_adam(),
            critic_steps=CRITIC_STEPS,
            gp_weight=GP_WEIGHT,
        )
    if model == "conditional_gan":
        return kc.ConditionalGAN(
            *networks,
            latent_dim=LATENT,
            num_classes=CLASSES,
            d_optimizer=dcgan_adam(),
            g_optimizer=dcgan_adam(),
        )
    if model == "distiller":
        return kc.Distiller(
            *networks,
            temperature=TEMPERATURE,
            alpha=ALPHA,
            optimizer=keras.optimizers.Adam(),
        )
    if model == "fixmatch":
        return kc.FixMatch(
            networks[0],
            weak_augmenter(),
            strong_augmenter(),
            threshold=THRESHOLD,
            optimizer=keras.optimizers.Adam(),
        )
    if model == "mean_teacher":
        return kc.MeanTeacher(
            networks[0],
            ema_decay=EMA_DECAY,
            augmenter=keras.layers.GaussianNoise(0.1),
            optimizer=keras.optimizers.Adam(),
        )
    if model == "sam":
        return kc.SharpnessAwareModel(
            networks[0], rho=RHO, optimizer=keras.optimizers.Adam(), loss=sparse_ce
        )
    if model == "adversarial":
        return kc.AdversarialModel(
            networks[0],
            epsilon=EPSILON,
            attack="fgsm",
            adversarial_weight=ADVERSARIAL_WEIGHT,
            optimizer=keras.optimizers.Adam(),
            loss=sparse_ce,
        )
    if model == "dqn":
        return kc.DQN(
            networks[0],
            gamma=GAMMA,
            tau=TAU,
            target_update_period=1,
            double_q=True,
            optimizer=rl_adam("dqn"),
        )
    if model == "diffusion":
        return kc.DiffusionModel(
            networks[0],
            timesteps=DIFFUSION_TIMESTEPS,
            schedule=DIFFUSION_SCHEDULE,
            prediction="epsilon",
            ema_decay=DIFFUSION_EMA_DECAY,
            sample_range=(-1.0, 1.0),
            min_snr_gamma=None,
            optimizer=keras.optimizers.Adam(DIFFUSION_LEARNING_RATE),
        )
    if model == "ppo":
        return kc.PPO(
            *networks,
            clip_ratio=PPO_CLIP_RATIO,
            value_weight=PPO_VALUE_WEIGHT,
            entropy_weight=PPO_ENTROPY_WEIGHT,
            optimizer=rl_adam("ppo"),
        )
    return kc.ActorCritic(
        *networks,
        value_weight=VALUE_WEIGHT,
        entropy_weight=ENTROPY_WEIGHT,
        optimizer=rl_adam("actor_critic"),
    )


BUILDERS = common.Builders(
    loop=lambda model, networks: LOOPS[model](networks), library_model=library_model
)


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None):
    parser = common.timing_parser(
        __doc__,
        rounds=7,
        epochs=6,
        samples=4096,
        models=MODELS,
        batch_help="labeled batch size of the image models (the unlabeled batch is "
        f"{UNLABELED_RATIO}x; DQN, ActorCritic and PPO take {DQN_BATCH}, "
        f"{A2C_BATCH} and {PPO_BATCH} transitions)",
    )
    return common.parse(parser, argv, MODELS)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Times the other models against their loops, prints the tables.

    Returns the results, what ``--json`` writes. `argv`: the arguments, or
    `None` for the command line's.
    """
    args = parse_args(argv)
    load_before = common.print_environment()
    steps_per_epoch = args.samples // args.batch_size
    common.print_plan(args, f"models {', '.join(args.models)}; ", steps_per_epoch)
    started = time.perf_counter()
    weights = common.initial_weights(args.models, build_networks)
    keras.utils.set_random_seed(common.SEED)
    forms = {model: common.forms_of(model) for model in args.models}
    prepared: dict[str, common.Prepared] = {}
    for model, model_forms in forms.items():
        dataset = make_dataset(model, args.samples, args.batch_size)
        for form in model_forms:
            prepared[form.key] = BUILDERS.prepare(
                form,
                lambda model=model: fresh_networks(model, weights),
                lambda dataset=dataset: dataset,
                None,
                int(dataset.cardinality()),
            )
            print(
                f"prepared {form.key} in {prepared[form.key].setup_seconds:.1f}s",
                flush=True,
            )
    runs = common.alternate(
        args.rounds,
        list(forms.values()),
        lambda form, round_index: common.time_run(
            prepared[form.key], round_index, args.epochs
        ),
    )
    return common.finish(
        args, forms, runs, started, load_before, args.samples, steps_per_epoch
    )


if __name__ == "__main__":
    main()
