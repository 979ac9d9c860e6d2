"""`EpisodeReturn`: the mean return of the episodes of each epoch, logged."""

import math

import keras


class EpisodeReturn(keras.callbacks.Callback):
    """Adds `episode_return` and `episodes` to each epoch's logs.

    `episode_return` is the mean undiscounted return of the episodes that
    the experience dataset's environments finished during the epoch (NaN
    when none finished), `episodes` their number; the first epoch counts
    from the callback's creation, each later one from the end of the
    previous epoch. They go to `History` and
    to the callbacks after this one, so `EarlyStopping(monitor=
    "episode_return", mode="max")` or `ModelCheckpoint` can use them: list
    this callback first.

    Args:
        dataset: The `ExperienceDataset` that `fit()` trains on.

    Example:

    Stop training when the return of the training episodes stops rising.

    ```python
    import gymnasium as gym
    import keras
    from keras_custom import DQN
    from keras_custom.reinforcement import EpisodeReturn, ReplayBufferDataset

    model = DQN(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    replay = ReplayBufferDataset(gym.make("CartPole-v1"), model, seed=0)
    callbacks = [  # EpisodeReturn first: the callbacks after it see its logs
        EpisodeReturn(replay),
        keras.callbacks.EarlyStopping(monitor="episode_return", mode="max"),
    ]
    history = model.fit(replay, steps_per_epoch=25, epochs=3, verbose=0,
                        callbacks=callbacks)
    history.history["episode_return"]  # one mean return per epoch
    ```
    """

    def __init__(self, dataset):
        super().__init__()
        if not hasattr(dataset, "episode_returns"):
            raise ValueError(
                "`EpisodeReturn` reads the finished episodes of an experience "
                f"dataset (`episode_returns`). Got: {dataset!r}."
            )
        self.dataset = dataset
        # Counted from the end of the previous epoch, not the start of this
        # one: `fit()` collects its first batch before the first epoch begins.
        self._first = len(dataset.episode_returns)

    def on_epoch_end(self, epoch, logs=None):
        returns = self.dataset.episode_returns[self._first :]
        self._first = len(self.dataset.episode_returns)
        if logs is None:
            return
        logs["episode_return"] = sum(returns) / len(returns) if returns else math.nan
        logs["episodes"] = len(returns)
