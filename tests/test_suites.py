import pytest

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


def test_full_suite_covers_every_registered_entry():
    assert set(load_suite("full").entries) == set(zoo.names())


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
    ('entries = ["cnn0.scratch"]\nsplits = ["validation"]', "splits: unknown key(s) 'validation'"),
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
[[variant]]
name = "lr=1e-2"
lr = 1e-2
[[variant]]
name = "sgd"
optimizer = "sgd"
lr = 1e-3
"""


def test_variants_make_one_run_per_entry_and_setting(tmp_path):
    suite = load_suite(write(tmp_path, STUDY))
    assert suite.run_ids() == ["cnn0.scratch@lr=1e-2", "cnn0.scratch@sgd", "cnn1.scratch@lr=1e-2", "cnn1.scratch@sgd"]
    runs = suite.runs(zoo.get("cnn0.scratch"))
    assert [(r.recipe.lr, r.recipe.optimizer, r.recipe.epochs) for r in runs] == [(1e-2, "adam", 2), (1e-3, "sgd", 2)]
    assert runs[0].recipe.hash() != runs[1].recipe.hash()
    assert suite.record()["variants"] == {"lr=1e-2": {"lr": 1e-2}, "sgd": {"optimizer": "sgd", "lr": 1e-3}}


@pytest.mark.parametrize("variant, message", [
    ('[[variant]]\nlr = 0.1', "needs a name"),
    ('[[variant]]\nname = "a/b"\nlr = 0.1', "needs a name"),
    ('[[variant]]\nname = "a"\nlearning_rate = 0.1', "[[variant]] 'a': unknown key(s) 'learning_rate'"),
    ('[[variant]]\nname = "a"\n[[variant]]\nname = "a"', "must be unique"),
    ('[[variant]]\nname = "a"\nlr = -1.0', "lr must be positive"),
])
def test_bad_variants_are_rejected(tmp_path, variant, message):
    with pytest.raises(SuiteError) as error:
        load_suite(write(tmp_path, 'entries = ["cnn0.scratch"]\n' + variant))
    assert message in str(error.value)


def test_seeds_repeat_every_row_with_its_own_recipe_seed(tmp_path):
    suite = load_suite(write(tmp_path, """
entries = ["cnn0.scratch"]
seeds = [0, 3]
[[variant]]
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
