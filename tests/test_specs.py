"""The registry of student and teacher specifications (``crembo.specs``):
one vocabulary for the estimators, the command line and the paper bench."""

import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from crembo import specs

from crembo.cli import commands as cli

from crembo.evaluation import paper
from crembo.cli.regression import make_regression_teacher, parse_regression_student
from crembo.trees.hist import HistTreeClassifier, resolve_student


def _all(role, task):
    return specs.names(role, task)


@pytest.mark.parametrize("task", specs.TASKS)
@pytest.mark.parametrize("role", specs.ROLES)
def test_every_entry_builds_a_fresh_unfitted_estimator(role, task):
    for name in _all(role, task):
        a, b = specs.make(name, role, task, seed=3), specs.make(name, role, task, seed=3)
        assert a is not b and repr(a) == repr(clone(a))
        if task == "classification":
            assert is_classifier(a), name
        else:
            assert is_regressor(a), name
        if "random_state" in a.get_params():
            assert a.get_params()["random_state"] in (3, None), name


def test_the_names_and_what_they_build():
    assert specs.names("student") == ("tree", "sklearn-tree", "logistic", "naive-bayes")
    assert specs.names("student", "regression") == ("tree", "linear", "ridge")
    assert specs.names("teacher") == ("random-forest", "gradient-boosting", "mlp")
    assert specs.names("teacher", "regression") == ("random-forest", "extra-trees", "gradient-boosting")
    t = specs.make("tree:3")
    assert isinstance(t, HistTreeClassifier) and t.max_depth == 3 and t.class_weight == "balanced"
    assert specs.make("tree").max_depth == 4
    s = specs.make("sklearn-tree:2", seed=7)
    assert type(s) is DecisionTreeClassifier and s.max_depth == 2 and s.random_state == 7
    assert s.class_weight == "balanced"
    assert specs.make("logistic:0.5").C == 0.5 and specs.make("logistic").C == 1.0
    assert isinstance(specs.make("naive-bayes"), GaussianNB)
    r = specs.make("tree:5", task="regression", seed=1)
    assert type(r) is DecisionTreeRegressor and r.max_depth == 5 and r.random_state == 1
    assert isinstance(specs.make("ridge:2", task="regression"), Ridge)
    mlp = specs.make("mlp", "teacher", seed=0)[-1]
    assert mlp.hidden_layer_sizes == (64,) and mlp.random_state == 0


def test_aliases_and_spelling():
    same = [
        ("tree:3", "hist-tree:3"),
        ("tree:3", " TREE:3 "),
        ("logistic:2", "logistic-regression:2"),
        ("logistic:2", "Logistic_Regression:2"),
        ("naive-bayes", "gaussian_nb"),
    ]
    for a, b in same:
        assert repr(specs.make(a)) == repr(specs.make(b)), (a, b)
    for a, b in (("random-forest", "random_forest"), ("gradient-boosting", "Gradient_Boosting")):
        assert repr(specs.make(a, "teacher", seed=0)) == repr(specs.make(b, "teacher", seed=0))
    assert specs.lookup("sklearn-tree:4", "student", "regression")[0].name == "tree"
    assert specs.lookup("linear_regression", "student", "regression")[0].name == "linear"


@pytest.mark.parametrize(
    "text, role, task, match",
    [
        ("tree:0", "student", "classification", r"bad parameter '0' \(tree:DEPTH with DEPTH >= 1\)"),
        ("tree:x", "student", "classification", "bad parameter 'x'"),
        ("sklearn-tree:-2", "student", "classification", "bad parameter '-2'"),
        ("logistic:0", "student", "classification", r"C > 0"),
        ("logistic:nan", "student", "classification", r"C > 0"),
        ("ridge:-1", "student", "regression", r"ALPHA > 0"),
        ("naive-bayes:3", "student", "classification", "naive-bayes takes no parameter"),
        ("forest", "student", "classification", r"unknown student 'forest'.*tree\[:DEPTH\], sklearn-tree"),
        ("svm", "teacher", "classification", "unknown teacher 'svm'.*random-forest, gradient-boosting, mlp"),
        ("mlp", "teacher", "regression", "unknown teacher 'mlp' for regression"),
        ("logistic", "student", "regression", "unknown student"),
    ],
)
def test_bad_specifications_raise_a_clear_error(text, role, task, match):
    with pytest.raises(specs.SpecError, match=match):
        specs.make(text, role, task)


def test_bad_calls_to_the_registry():
    with pytest.raises(ValueError, match="role: expected one of"):
        specs.make("tree", "teachers")
    with pytest.raises(ValueError, match="task: expected one of"):
        specs.names("student", "ranking")
    with pytest.raises(TypeError, match="expected a specification string, got int"):
        specs.lookup(4)
    with pytest.raises(ValueError, match="'hist-tree' is already registered"):
        specs.register(specs.Spec("hist-tree", "student", "classification", lambda v, s: None, "x"))
    assert issubclass(specs.SpecError, ValueError)


def test_library_cli_and_paper_build_the_same_models():
    # Issue 14, item 6: one vocabulary. A student name means the same model
    # as a Python student= string and as a --student of the command line.
    for name in specs.names("student"):
        for text in (name, f"{name}:3") if specs.lookup(name)[0].param else (name,):
            assert repr(resolve_student(text)) == repr(cli.parse_student(text, None)), text
    for name in specs.names("student", "regression"):
        assert repr(parse_regression_student(name, 0)) == repr(specs.make(name, task="regression", seed=0))
    for name in specs.names("teacher"):
        assert repr(cli.make_teacher(name, 0)) == repr(specs.make(name, "teacher", seed=0))
    for name in specs.names("teacher", "regression"):
        assert repr(make_regression_teacher(name, 0)) == repr(specs.make(name, "teacher", "regression", seed=0))
    # The paper bench: its two teachers under the labels of its reports.
    assert list(paper.TEACHERS) == ["random_forest", "mlp"]
    for label, factory in paper.TEACHERS.items():
        assert repr(factory(0)) == repr(specs.make(label, "teacher", seed=0))
    assert paper.teacher_label("random-forest") == paper.teacher_label("random_forest") == "random_forest"
    assert paper.teacher_label("Gradient-Boosting") == "gradient_boosting"
    with pytest.raises(specs.SpecError):
        paper.teacher_label("svm")


def test_python_students_accept_every_registered_name():
    assert type(resolve_student("sklearn-tree:3")) is DecisionTreeClassifier
    assert isinstance(resolve_student("logistic"), LogisticRegression)
    est = LogisticRegression()
    assert resolve_student(est) is est
    with pytest.raises(ValueError, match=r"student: expected an estimator or a specification.*unknown student"):
        resolve_student("forest")
    with pytest.raises(ValueError, match="bad parameter '0'"):
        resolve_student("tree:0")


def test_cli_help_lists_the_registry(capsys):
    with pytest.raises(SystemExit):
        cli.main(["compress", "--help"])
    out = capsys.readouterr().out
    for role in specs.ROLES:
        for task in specs.TASKS:
            assert f"{role}s for {task} (--{role}):" in out
            for spec in {id(s): s for s in specs._REGISTRY[role, task].values()}.values():
                assert spec.usage in out
                assert all(a in out for a in spec.aliases)
    assert "random_forest is random-forest" in out


def test_paper_cli_refuses_an_unknown_teacher(capsys):
    with pytest.raises(SystemExit):
        paper.main(["--teachers", "svm", "--datasets", "iris"])
    assert "unknown teacher 'svm'; choose from random-forest, gradient-boosting, mlp" in capsys.readouterr().err
