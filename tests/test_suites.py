import logging

import pytest
import torch
from torch import nn

import zoo
from bench.suites import SuiteError, load_suite


def write(tmp_path, text, name="mysuite"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def test_shipped_suites_parse_and_name_real_entries():
    for name in ("quick", "full"):
        suite = load_suite(name)
        assert suite.entries and all(zoo.get(n) for n in suite.entries)
        assert len(suite.file_sha256) == 64


def test_full_suite_covers_every_registered_classifier_and_segmentation_every_unet():
    classifiers = {e.name for e in zoo.entries() if e.task == "classification"}
    assert set(load_suite("full").entries) == classifiers
    assert set(load_suite("segmentation").entries) == set(zoo.names()) - classifiers


def test_overrides_apply_in_order(tmp_path):
    suite = load_suite(write(tmp_path, """
entries = ["cnn*"]
[recipe]
input_size = 64
epochs = 3
[entry."cnn1.scratch"]
epochs = 7
"""))
    assert suite.entries == ("cnn0.scratch", "cnn1.scratch", "cnn2.scratch", "cnn3.scratch")
    assert suite.recipe_for(zoo.get("cnn0.scratch")).epochs == 3
    cnn1 = suite.recipe_for(zoo.get("cnn1.scratch"))
    assert (cnn1.epochs, cnn1.input_size) == (7, 64)
    assert cnn1.lr == zoo.get("cnn1.scratch").recipe.lr  # untouched fields keep the entry's default


@pytest.mark.parametrize("text, message", [
    ('entries = ["cnn0.scratch"]\nepochs = 3', "unknown key(s) 'epochs'"),
    ('entries = ["cnn0.scratch"]\n[recipe]\nepoch = 3', "[recipe]: unknown key(s) 'epoch'"),
    ('entries = ["cnn0.scratch"]\n[entry."cnn0.scratch"]\nbatchsize = 3', "unknown key(s) 'batchsize'"),
    ('entries = ["cnn0.scratch"]\n[entry."cnn1.scratch"]\nepochs = 3', "not in this suite's entries"),
    ('entries = ["nope.scratch"]', "matches no zoo entry"),
    ('description = "no entries"', "missing required key 'entries'"),
    ('entries = "cnn0.scratch"', "must be a list of strings"),
    ('entries = ["cnn0.scratch"]\nsplits = ["test"]', "unknown key(s) 'splits'"),
    ('entries = ["cnn0.scratch"]\n[recipe]\nepochs = 0', "epochs must be positive"),
    ('entries = [', "not valid TOML"),
])
def test_bad_suites_are_rejected_with_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    assert message in str(error.value) and "mysuite.toml" in str(error.value)


def test_unknown_suite_name_lists_the_known_ones():
    with pytest.raises(SuiteError, match="known suites: .*quick"):
        load_suite("no-such-suite")


STUDY = """
entries = ["cnn0.scratch", "cnn1.scratch"]
[recipe]
epochs = 2
[[setting]]
name = "lr=1e-2"
lr = 1e-2
[[setting]]
name = "sgd"
optimizer = "sgd"
lr = 1e-3
"""


def test_settings_make_one_run_per_entry_and_setting(tmp_path):
    suite = load_suite(write(tmp_path, STUDY))
    assert suite.run_ids() == ["cnn0.scratch@lr=1e-2", "cnn0.scratch@sgd", "cnn1.scratch@lr=1e-2", "cnn1.scratch@sgd"]
    runs = suite.runs(zoo.get("cnn0.scratch"))
    assert [(r.recipe.lr, r.recipe.optimizer, r.recipe.epochs) for r in runs] == [(1e-2, "adam", 2), (1e-3, "sgd", 2)]
    assert runs[0].recipe.hash() != runs[1].recipe.hash()
    assert suite.record()["settings"] == {"lr=1e-2": {"lr": 1e-2}, "sgd": {"optimizer": "sgd", "lr": 1e-3}}


@pytest.mark.parametrize("setting, message", [
    ('[[setting]]\nlr = 0.1', "needs a name"),
    ('[[setting]]\nname = "a/b"\nlr = 0.1', "needs a name"),
    ('[[setting]]\nname = "a"\nlearning_rate = 0.1', "[[setting]] 'a': unknown key(s) 'learning_rate'"),
    ('[[setting]]\nname = "a"\n[[setting]]\nname = "a"', "must be unique"),
    ('[[setting]]\nname = "a"\nlr = -1.0', "lr must be positive"),
])
def test_bad_settings_are_rejected(tmp_path, setting, message):
    with pytest.raises(SuiteError) as error:
        load_suite(write(tmp_path, 'entries = ["cnn0.scratch"]\n' + setting))
    assert message in str(error.value)


def test_seeds_repeat_every_row_with_its_own_recipe_seed(tmp_path):
    suite = load_suite(write(tmp_path, """
entries = ["cnn0.scratch"]
seeds = [0, 3]
[[setting]]
name = "lr=1e-2"
lr = 1e-2
"""))
    runs = suite.runs(zoo.get("cnn0.scratch"))
    assert [r.run_id for r in runs] == ["cnn0.scratch@lr=1e-2,seed=0", "cnn0.scratch@lr=1e-2,seed=3"]
    assert [(r.recipe.seed, r.recipe.lr) for r in runs] == [(0, 1e-2), (3, 1e-2)]
    assert len({r.recipe.hash() for r in runs}) == 2  # each seed is its own checkpoint


@pytest.mark.parametrize("seeds, message", [("[1, 1]", "repeat"), ("[-1]", "non-negative"), ('["a"]', "integers")])
def test_bad_seed_lists_are_errors(tmp_path, seeds, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, f'entries = ["cnn0.scratch"]\nseeds = {seeds}\n'))


# --- values are type-checked at parse time, before any training ------------------------------

E = 'entries = ["cnn0.scratch"]\n'


@pytest.mark.parametrize("text, message", [
    (E + '[recipe]\nepochs = "three"', '[recipe] epochs must be a whole number, got "three"'),
    (E + '[recipe]\nlr = "abc"', '[recipe] lr must be a number, got "abc"'),
    (E + "[recipe]\nepochs = 1.5", "[recipe] epochs must be a whole number, got 1.5"),
    (E + "[recipe]\nepochs = true", "[recipe] epochs must be a whole number, got true"),
    (E + "[recipe]\nlr = inf", "[recipe] lr must be a finite number, got inf"),
    (E + "[recipe]\nweight_decay = nan", "[recipe] weight_decay must be a finite number, got nan"),
    (E + "[recipe]\nseed = -1", "[recipe] seed must not be negative, got -1"),
    (E + "[recipe]\ninput_size = 8", "[recipe] input_size must be between 16 and 1024 px, got 8"),
    (E + "[recipe]\nbatch_size = 0", "[recipe] batch_size must be positive, got 0"),
    (E + '[recipe]\noptimizer = "rmsprop"', '[recipe] optimizer must be one of adam, adamw, sgd; got "rmsprop"'),
    (E + '[entry."cnn0.scratch"]\nepochs = "2"', '[entry."cnn0.scratch"] epochs must be a whole number, got "2"'),
    (E + '[[setting]]\nname = "a"\nlr = "abc"', "[[setting]] 'a' lr must be a number, got \"abc\""),
    (E + "[[setting]]\nname = \"a\"\nautoaugment = 1", "[[setting]] 'a' autoaugment must be true or false, got 1"),
    ("entries = []", "'entries' is empty and no imported models are listed; registered entries: alexnet.imagenet,"),
    ('entries = ["cnn9.scratch"]', "entry 'cnn9.scratch' matches no zoo entry; registered entries: alexnet.imagenet,"),
    ('entries = ["zz*"]', "entry 'zz*' matches no zoo entry; registered entries: "),
    (E + '[entry."cnn1.scratch"]\nepochs = 3', "this suite's entries: cnn0.scratch"),
    ("description = 3\n" + E, "'description' must be a string, got 3"),
    (E + "seeds = [0, 1]\n[[setting]]\nname = \"a\"\nseed = 4", "give either a 'seeds' list or [[setting]] 'a' seed"),
])
def test_bad_values_are_rejected_at_parse_time_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_int_values_of_float_fields_hash_like_floats(tmp_path):
    as_int = load_suite(write(tmp_path, E + "[recipe]\nweight_decay = 0\nlr = 1", "a"))
    as_float = load_suite(write(tmp_path, E + "[recipe]\nweight_decay = 0.0\nlr = 1.0", "b"))
    entry = zoo.get("cnn0.scratch")
    assert as_int.recipe_for(entry).hash() == as_float.recipe_for(entry).hash()


def test_a_cli_error_for_a_bad_suite_value_is_one_line(tmp_path, capsys):
    from bench.cli import main

    path = write(tmp_path, E + '[recipe]\nepochs = "three"')
    assert main(["run", "--suite", path, "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err == f'brainbench: error: {path}: [recipe] epochs must be a whole number, got "three"\n'


# --- suite recipe overrides never reach an imported model -------------------------------------

def imported_model(tmp_path, input_size=40):
    model_file = tmp_path / "ext.pt"
    torch.jit.trace(nn.Sequential(nn.Flatten(), nn.Linear(3 * input_size * input_size, 4)).eval(),
                    torch.zeros(1, 3, input_size, input_size)).save(str(model_file))
    spec = tmp_path / "ext.toml"
    spec.write_text(f'name = "ext"\npath = "ext.pt"\ninput_size = {input_size}\nchannels = 3\nmean = [0.5]\n'
                    'std = [0.25]\nclasses = ["glioma", "meningioma", "notumor", "pituitary"]\n')
    return spec


STUDY_WITH_EXTERNAL = """
entries = ["cnn0.scratch"]
imported = ["ext.toml"]
seeds = [0, 1]
[recipe]
input_size = 64
epochs = 2
[[setting]]
name = "lr=1e-2"
lr = 1e-2
[[setting]]
name = "lr=1e-3"
lr = 1e-3
"""


def test_imported_models_keep_their_declared_input_and_run_once(tmp_path, caplog):
    imported_model(tmp_path)
    with caplog.at_level(logging.INFO, logger="brainbench"):
        suite = load_suite(write(tmp_path, STUDY_WITH_EXTERNAL))
    ext = suite.imported[0]
    runs = suite.runs(ext)
    assert [(r.run_id, r.recipe) for r in runs] == [("ext.imported", ext.recipe)]
    assert runs[0].recipe.input_size is None and ext.input_size == 40  # the runner decodes at 40 px
    assert suite.recipe_for(zoo.get("cnn0.scratch")).input_size == 64  # zoo entries still get the override
    notes = [r.getMessage() for r in caplog.records if "ext.imported" in r.getMessage()]
    assert len(notes) == 1 and "not applied" in notes[0] and "40 px" in notes[0]


def test_add_model_on_the_command_line_is_not_overridden_either(tmp_path, caplog):
    spec = imported_model(tmp_path)
    suite = load_suite(write(tmp_path, 'entries = ["cnn0.scratch"]\n[recipe]\ninput_size = 64\n'))
    with caplog.at_level(logging.INFO, logger="brainbench"):
        suite = suite.with_imported([str(spec)])
    assert [r.recipe.input_size for r in suite.runs(suite.imported[0])] == [None]
    assert sum("ext.imported" in r.getMessage() for r in caplog.records) == 1


def test_two_imported_models_with_one_name_are_an_error(tmp_path):
    spec = imported_model(tmp_path)
    suite = load_suite(write(tmp_path, 'entries = ["cnn0.scratch"]\n'))
    with pytest.raises(SuiteError, match="ext.imported is listed twice"):
        suite.with_imported([str(spec), str(spec)])


# --- suites ship with the package --------------------------------------------------------------

def test_named_suites_are_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_suite("quick")
    assert suite.path.name == "quick.toml" and suite.path.is_file()
    own = tmp_path / "suites"
    own.mkdir()
    (own / "quick.toml").write_text('entries = ["cnn0.scratch"]\n')  # ./suites/ comes first, as before
    assert load_suite("quick").entries == ("cnn0.scratch",)


def test_every_shipped_suite_parses():
    from bench.suites import known_suites

    names = known_suites()
    assert {"quick", "full", "study-lr"} <= set(names)
    for name in names:
        load_suite(name)
