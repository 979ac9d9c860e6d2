"""Scalars given as a float or a schedule, evaluated at optimizer steps."""

import keras
import numpy as np
import pytest

from keras_custom.core import scalar_value, serialize_scalar, validate_scalar
from tests.models import digit_data, encoder_head


def warm_up():
    return keras.optimizers.schedules.PolynomialDecay(0.0, 10, 1.0)


def test_schedule_follows_the_optimizer_iterations_across_save_and_load(tmp_path):
    x, y = digit_data(64, one_hot=True)
    model = encoder_head(activity_weight=warm_up())
    model.compile()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # 4 steps
    # PolynomialDecay from 0 to 1 over 10 steps, power 1: step / 10.
    np.testing.assert_allclose(
        float(model.scalar(model.activity_weight, "encoder_optimizer")), 0.4, rtol=1e-6
    )
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(
        loaded.activity_weight, keras.optimizers.schedules.PolynomialDecay
    )
    np.testing.assert_allclose(
        float(loaded.scalar(loaded.activity_weight, "encoder_optimizer")),
        0.4,
        rtol=1e-6,
    )


def test_floats_and_configs():
    assert validate_scalar(2, "weight") == 2.0
    assert float(scalar_value(0.5, step=7)) == 0.5
    schedule = validate_scalar(serialize_scalar(warm_up()), "weight")
    np.testing.assert_allclose(float(scalar_value(schedule, step=5)), 0.5)


@pytest.mark.parametrize("value", ["0.5", None, True, [0.1]])
def test_bad_values_are_named(value):
    with pytest.raises(ValueError, match="`kl_weight` must be a float or a"):
        validate_scalar(value, "kl_weight")
