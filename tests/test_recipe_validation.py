"""Recipe values are checked by type and range wherever they come from (suite files, CLI flags, code)."""

import math

import pytest

import zoo
from zoo.recipe import Recipe, RecipeError, check_recipe_value, recipe_overrides


@pytest.mark.parametrize("field, value, message", [
    ("epochs", "three", 'epochs must be a whole number, got "three"'),
    ("epochs", 1.5, "epochs must be a whole number, got 1.5"),
    ("epochs", True, "epochs must be a whole number, got true"),
    ("epochs", 0, "epochs must be positive, got 0"),
    ("batch_size", 0, "batch_size must be positive, got 0"),
    ("step_size", 3.0, "step_size must be a whole number, got 3.0"),
    ("lr", "abc", 'lr must be a number, got "abc"'),
    ("lr", True, "lr must be a number, got true"),
    ("lr", math.inf, "lr must be a finite number, got inf"),
    ("lr", math.nan, "lr must be a finite number, got nan"),
    ("weight_decay", -math.inf, "weight_decay must be a finite number, got -inf"),
    ("weight_decay", -0.1, "weight_decay must not be negative, got -0.1"),
    ("momentum", math.nan, "momentum must be a finite number, got nan"),
    ("gamma", math.inf, "gamma must be a finite number, got inf"),
    ("val_fraction", 1.0, "val_fraction must be in (0, 1), got 1.0"),
    ("seed", -1, "seed must not be negative, got -1"),
    ("input_size", 8, "input_size must be between 16 and 1024 px, got 8"),
    ("input_size", 2048, "input_size must be between 16 and 1024 px, got 2048"),
    ("input_size", 64.0, "input_size must be a whole number, got 64.0"),
    ("dropout", 1.0, "dropout must be in [0, 1), got 1.0"),
    ("dropout", "0.2", 'dropout must be a number, got "0.2"'),
    ("patience", 0, "patience must be at least 1 epoch, got 0"),
    ("optimizer", "rmsprop", 'optimizer must be one of adam, adamw, sgd; got "rmsprop"'),
    ("optimizer", 3, "optimizer must be one of adam, adamw, sgd; got 3"),
    ("autoaugment", 1, "autoaugment must be true or false, got 1"),
    ("crop_to_content", "yes", 'crop_to_content must be true or false, got "yes"'),
])
def test_bad_values_name_the_field_and_value(field, value, message):
    with pytest.raises(RecipeError) as error:
        check_recipe_value(field, value, "x.toml: [recipe]")
    assert str(error.value) == f"x.toml: [recipe] {message}"
    with pytest.raises(RecipeError) as error:  # the same check guards every Recipe, e.g. from CLI flags
        Recipe(**{field: value})
    assert str(error.value) == message


@pytest.mark.parametrize("field, value, expected", [
    ("lr", 1, 1.0), ("weight_decay", 0, 0.0), ("dropout", None, None), ("patience", None, None),
    ("input_size", None, None), ("input_size", 16, 16), ("input_size", 1024, 1024), ("seed", 0, 0),
    ("random_resized_crop", True, True), ("scheduler", "onecycle", "onecycle"),
])
def test_good_values_pass_and_ints_of_float_fields_become_floats(field, value, expected):
    checked = check_recipe_value(field, value)
    assert checked == expected and type(checked) is type(expected)


def test_an_int_and_a_float_of_the_same_value_hash_alike():
    # `lr = 1` and `lr = 1.0` in a suite must find the same checkpoint.
    assert Recipe(lr=1, weight_decay=0).hash() == Recipe(lr=1.0, weight_decay=0.0).hash()
    assert type(Recipe(lr=1).lr) is float


def test_default_recipe_hashes_are_unchanged():
    # Stored checkpoints are keyed by these hashes; validation must not change them.
    assert Recipe().hash() == "3dff604ac0f3"
    assert zoo.get("cnn0.scratch").recipe.hash() == Recipe(epochs=10).hash()
    assert zoo.get("resnet18.scratch").recipe == Recipe(optimizer="adam", lr=1e-3, epochs=20, batch_size=32,
                                                       scheduler="cosine")


def test_recipe_overrides_check_keys_and_values():
    assert recipe_overrides({"lr": 1, "epochs": 2}, "s.toml: [recipe]") == {"lr": 1.0, "epochs": 2}
    with pytest.raises(RecipeError, match=r"^s.toml: \[recipe\]: unknown key\(s\) 'epoch'; allowed: "):
        recipe_overrides({"epoch": 2}, "s.toml: [recipe]")
    with pytest.raises(RecipeError, match=r'^s.toml: \[recipe\] epochs must be a whole number, got "2"$'):
        recipe_overrides({"epochs": "2"}, "s.toml: [recipe]")


def test_unknown_field_in_check_recipe_value():
    with pytest.raises(RecipeError, match="unknown recipe field 'epoch'"):
        check_recipe_value("epoch", 3)
