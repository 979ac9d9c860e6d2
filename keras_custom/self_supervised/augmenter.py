"""The default augmentation pipeline of the self-supervised models."""

import keras


def small_image_augmenter(
    translation: float = 0.15,
    zoom: float = 0.2,
    rotation: float = 0.04,
    contrast: float = 0.3,
    noise: float = 0.1,
    seed: int | None = None,
    name: str = "augmenter",
) -> keras.Sequential:
    """A random augmentation pipeline for small images, from Keras layers.

    Random translation, zoom and rotation (filled with zeros), random
    contrast and Gaussian noise, for images `(height, width, channels)` with
    pixel values in `[0, 1]`. Self-supervised models apply it with
    `training=True` to make two views of a batch. Set a factor to 0 to leave
    that transform out.

    Args:
        translation: Largest shift, as a fraction of height and width.
        zoom: Largest zoom in or out, as a fraction.
        rotation: Largest rotation, as a fraction of a full turn.
        contrast: Largest contrast change, as a fraction.
        noise: Standard deviation of the additive Gaussian noise.
        seed: Seed of the first layer; the others use `seed + i`.
        name: Name of the `keras.Sequential`.

    Returns:
        A `keras.Sequential` of Keras preprocessing layers.

    Example:

    ```python
    import numpy as np
    from keras_custom.self_supervised import small_image_augmenter

    augmenter = small_image_augmenter(seed=0)
    views = augmenter(np.ones((4, 8, 8, 1), "float32"), training=True)
    ```

    Reference:
        Chen et al., SimCLR, ICML 2020 (https://arxiv.org/abs/2002.05709),
        section 3: the composition of augmentations matters most.
    """

    def seed_of(index):
        return None if seed is None else seed + index

    layers = []
    if translation:
        layers.append(
            keras.layers.RandomTranslation(
                translation, translation, fill_mode="constant", seed=seed_of(0)
            )
        )
    if zoom:
        layers.append(
            keras.layers.RandomZoom(zoom, fill_mode="constant", seed=seed_of(1))
        )
    if rotation:
        layers.append(
            keras.layers.RandomRotation(rotation, fill_mode="constant", seed=seed_of(2))
        )
    if contrast:
        layers.append(
            keras.layers.RandomContrast(contrast, value_range=(0, 1), seed=seed_of(3))
        )
    if noise:
        layers.append(keras.layers.GaussianNoise(noise, seed=seed_of(4)))
    return keras.Sequential(layers, name=name)
