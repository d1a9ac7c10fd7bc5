"""One vocabulary of student and teacher specifications.

A *specification* is a short string naming a model and, after a colon, its
one parameter: ``"tree:4"`` is crembo's histogram tree of depth 4,
``"logistic:0.5"`` a logistic regression with ``C=0.5``, ``"mlp"`` the
network teacher. The same registry is read by the estimators (``student=
"tree:4"``), the command line (``crembo compress --student ... --teacher
...``, whose help lists it) and the paper bench (``crembo paper --teachers
...``), so a name means one model everywhere.

Names are case-insensitive, and ``_`` and ``-`` are the same character
(``random_forest`` is ``random-forest``). Each entry may have aliases (old
spellings that keep working). Entries are kept per role (student or teacher)
and task (classification or regression):

=============== ============== ==================================================
role, task      name           model
=============== ============== ==================================================
student, clf    tree[:DEPTH]   ``tree_student(DEPTH)``: crembo's histogram tree,
                               balanced classes (default depth 4); alias
                               ``hist-tree``
student, clf    sklearn-tree   scikit-learn's ``DecisionTreeClassifier``,
                [:DEPTH]       balanced classes (default depth 4)
student, clf    logistic[:C]   ``LogisticRegression(C)``, balanced (default C 1);
                               alias ``logistic-regression``
student, clf    naive-bayes    ``GaussianNB()``; alias ``gaussian-nb``
student, reg    tree[:DEPTH]   scikit-learn's ``DecisionTreeRegressor`` (the
                               regression estimators' default student); alias
                               ``sklearn-tree``
student, reg    linear         ``LinearRegression()``; alias ``linear-regression``
student, reg    ridge[:ALPHA]  ``Ridge(ALPHA)`` (default 1)
teacher, clf    random-forest  ``default_teacher``: 100 trees of depth 12,
                               balanced (the paper's forest)
teacher, clf    gradient-      ``HistGradientBoostingClassifier`` taking pandas
                boosting       categorical columns
teacher, clf    mlp            ``mlp_teacher``: standardised features into one
                               hidden layer of 64 units (the paper's network)
teacher, reg    random-forest  ``default_regression_teacher``
teacher, reg    extra-trees    ``ExtraTreesRegressor(100, min_samples_leaf=5)``
teacher, reg    gradient-      ``HistGradientBoostingRegressor``
                boosting
=============== ============== ==================================================

The registry builds unfitted estimators; ``seed`` becomes their
``random_state`` where they have one (None leaves it to the caller, as the
estimators' seeded clones do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "Spec",
    "SpecError",
    "ROLES",
    "TASKS",
    "register",
    "lookup",
    "make",
    "names",
    "usage",
    "describe",
    "mlp_teacher",
]

ROLES = ("student", "teacher")
TASKS = ("classification", "regression")


class SpecError(ValueError):
    """A specification that names no registered model, or a bad parameter."""


@dataclass(frozen=True)
class Spec:
    """One registered model.

    Parameters
    ----------
    name : str
        The canonical name (lower case, words joined by ``-``).
    role : {"student", "teacher"}
    task : {"classification", "regression"}
    build : callable
        ``build(value, seed)`` returns a new unfitted estimator; ``value`` is
        the parsed parameter (``default`` when the specification has none),
        None for a model without a parameter.
    summary : str
        One line for help texts.
    param : str or None, default=None
        The parameter's name in usage texts (``"DEPTH"``); None: the model
        takes none.
    parse : callable or None, default=None
        ``parse(text)`` returns the parameter's value, raising ``ValueError``
        when the text is not a valid one.
    default : object, default=None
        The parameter's value when the specification gives none.
    rule : str, default=""
        What a valid parameter is, for error messages (``"DEPTH >= 1"``).
    aliases : tuple of str, default=()
        Other names of the same model.
    tree : bool, default=False
        The model is a decision tree (a student the exports take).
    """

    name: str
    role: str
    task: str
    build: Callable[[Any, Any], Any]
    summary: str
    param: str | None = None
    parse: Callable[[str], Any] | None = None
    default: Any = None
    rule: str = ""
    aliases: tuple[str, ...] = field(default=())
    tree: bool = False

    @property
    def usage(self) -> str:
        """``name[:PARAM]`` (or the bare name for a model without parameter)."""
        return self.name if self.param is None else f"{self.name}[:{self.param}]"

    def make(self, arg: str | None = None, seed: int | None = None) -> Any:
        """A new estimator from the parameter text ``arg`` (None: the default)."""
        if self.param is None:
            if arg:
                raise SpecError(f"{self.name} takes no parameter, got {arg!r}")
            return self.build(None, seed)
        if not arg:
            return self.build(self.default, seed)
        try:
            value = self.parse(arg.strip())
        except ValueError:
            raise SpecError(f"bad parameter {arg!r} ({self.name}:{self.param} with {self.rule})") from None
        return self.build(value, seed)


#: (role, task) -> {name or alias: Spec}, names before aliases in registration order.
_REGISTRY: dict[tuple[str, str], dict[str, Spec]] = {(r, t): {} for r in ROLES for t in TASKS}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _check_role_task(role: str, task: str) -> dict[str, Spec]:
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    return _REGISTRY[role, task]


def register(spec: Spec) -> Spec:
    """Add ``spec`` (under its name and aliases); a name already taken for
    the same role and task is refused."""
    table = _check_role_task(spec.role, spec.task)
    keys = [_key(spec.name), *(_key(a) for a in spec.aliases)]
    taken = [k for k in keys if k in table]
    if taken:
        raise ValueError(f"register: {spec.role} name {taken[0]!r} is already registered for {spec.task}")
    for k in keys:
        table[k] = spec
    return spec


def lookup(text: str, role: str = "student", task: str = "classification") -> tuple[Spec, str]:
    """The registered model a specification names, and its parameter text
    (``""`` when none). Raises :class:`SpecError` for an unknown name."""
    table = _check_role_task(role, task)
    if not isinstance(text, str):
        raise TypeError(f"{role}: expected a specification string, got {type(text).__name__}")
    name, _, arg = text.partition(":")
    spec = table.get(_key(name))
    if spec is None:
        raise SpecError(f"unknown {role} {text!r} for {task}; expected {usage(role, task)}")
    return spec, arg.strip()


def make(text: str, role: str = "student", task: str = "classification", *, seed: int | None = None) -> Any:
    """A new unfitted estimator from a specification.

    Parameters
    ----------
    text : str
        ``name[:parameter]``, e.g. ``"tree:4"``, ``"random_forest"``.
    role : {"student", "teacher"}, default="student"
    task : {"classification", "regression"}, default="classification"
    seed : int or None, default=None
        The estimator's ``random_state`` where it has one.

    Raises
    ------
    SpecError
        An unknown name or a bad parameter (a ``ValueError``).
    """
    spec, arg = lookup(text, role, task)
    return spec.make(arg, seed)


def names(role: str = "student", task: str = "classification") -> tuple[str, ...]:
    """The canonical names, in registration order (aliases left out)."""
    table = _check_role_task(role, task)
    return tuple(dict.fromkeys(s.name for s in table.values()))


def _specs(role: str, task: str) -> list[Spec]:
    table = _check_role_task(role, task)
    return list({id(s): s for s in table.values()}.values())


def usage(role: str = "student", task: str = "classification") -> str:
    """``"tree[:DEPTH], sklearn-tree[:DEPTH], ..."``: the forms one may write."""
    return ", ".join(s.usage for s in _specs(role, task))


def describe(role: str = "student", task: str = "classification") -> str:
    """One line per model: its usage, summary and aliases (for help texts)."""
    lines = []
    for s in _specs(role, task):
        alias = f" (also {', '.join(s.aliases)})" if s.aliases else ""
        lines.append(f"  {s.usage:22s} {s.summary}{alias}")
    return "\n".join(lines)


# ------------------------------------------------------------------ parameters
def _depth(text: str) -> int:
    depth = int(text)
    if depth < 1:
        raise ValueError(text)
    return depth


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:  # NaN too
        raise ValueError(text)
    return value


# ------------------------------------------------------------------ builders
def mlp_teacher(random_state: int | None = None) -> Any:
    """The network teacher: a one-hidden-layer MLP (64 units) on standardised
    features (the paper bench's and the command line's ``mlp``)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=300, random_state=random_state)
    )


def _hist_tree(depth, seed):
    from .trees.hist import tree_student

    return tree_student(depth)


def _sklearn_tree(depth, seed):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=depth, class_weight="balanced", random_state=seed)


def _logistic(C, seed):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=2000, class_weight="balanced")


def _naive_bayes(_, seed):
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


def _regression_tree(depth, seed):
    from sklearn.tree import DecisionTreeRegressor

    return DecisionTreeRegressor(max_depth=depth, random_state=seed)


def _linear(_, seed):
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _ridge(alpha, seed):
    from sklearn.linear_model import Ridge

    return Ridge(alpha=alpha)


def _random_forest(_, seed):
    from .compress.estimators import default_teacher

    return default_teacher(seed)


def _gradient_boosting(_, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # from_dtype: pandas categorical columns are native categorical features
    return HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)


def _mlp(_, seed):
    return mlp_teacher(seed)


def _random_forest_regressor(_, seed):
    from .compress.regression import default_regression_teacher

    return default_regression_teacher(seed)


def _extra_trees_regressor(_, seed):
    from sklearn.ensemble import ExtraTreesRegressor

    return ExtraTreesRegressor(n_estimators=100, min_samples_leaf=5, random_state=seed)


def _gradient_boosting_regressor(_, seed):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(random_state=seed)


_CLF, _REG = TASKS
_DEPTH = dict(param="DEPTH", parse=_depth, default=4, rule="DEPTH >= 1", tree=True)

for _spec in (
    Spec(
        "tree", "student", _CLF, _hist_tree, "crembo's histogram tree, balanced classes (default depth 4)",
        aliases=("hist-tree",), **_DEPTH,
    ),
    Spec("sklearn-tree", "student", _CLF, _sklearn_tree, "scikit-learn's decision tree, balanced classes", **_DEPTH),
    Spec(
        "logistic", "student", _CLF, _logistic, "logistic regression, balanced classes (default C 1)",
        param="C", parse=_positive, default=1.0, rule="C > 0", aliases=("logistic-regression",),
    ),
    Spec("naive-bayes", "student", _CLF, _naive_bayes, "Gaussian naive Bayes", aliases=("gaussian-nb",)),
    Spec(
        "tree", "student", _REG, _regression_tree, "scikit-learn's regression tree (default depth 4)",
        aliases=("sklearn-tree",), **_DEPTH,
    ),
    Spec("linear", "student", _REG, _linear, "linear regression", aliases=("linear-regression",)),
    Spec(
        "ridge", "student", _REG, _ridge, "ridge regression (default ALPHA 1)",
        param="ALPHA", parse=_positive, default=1.0, rule="ALPHA > 0",
    ),
    Spec("random-forest", "teacher", _CLF, _random_forest, "100 trees of depth 12, balanced (the paper's forest)"),
    Spec(
        "gradient-boosting", "teacher", _CLF, _gradient_boosting,
        "histogram gradient boosting; takes categorical columns and missing values",
    ),
    Spec("mlp", "teacher", _CLF, _mlp, "one hidden layer of 64 units on standardised features (the paper's network)"),
    Spec("random-forest", "teacher", _REG, _random_forest_regressor, "random forest regressor"),
    Spec("extra-trees", "teacher", _REG, _extra_trees_regressor, "100 extra trees, min_samples_leaf 5"),
    Spec("gradient-boosting", "teacher", _REG, _gradient_boosting_regressor, "histogram gradient boosting"),
):  # fmt: skip
    register(_spec)
del _spec
