"""Which types a .skops file would make skops build, checked against an explicit list, without
importing skops or scikit-learn.

    skops_problem(path) -> ''  (every object in the file is of a type in TRUSTED), else why not

A .skops file is a zip archive whose schema.json describes every object to build as a node
{"__loader__": how, "__module__": ..., "__class__": ...}. Every node of the schema is looked at:
its loader must be one of LOADERS and its type one of TRUSTED: the containers, numbers and numpy
arrays skops itself trusts, and the scikit-learn classes MedViewer's trainers write (the estimators
of ai.classical.MODEL_TYPES, the anomaly detectors, and the internals they carry). Nothing else
passes, functions included: skops trusts every scikit-learn estimator by default, among them
FunctionTransformer, which would call any function the file names when the model predicts.
backends.sklearn_io loads a file only after this check, and passes skops exactly the types its own
audit (skops.io.get_untrusted_types) reports, which must all be in SKLEARN_TYPES.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from medviewer.ai.model_files import shown
from medviewer.core.memory import TooLarge, check_fits

MAX_SCHEMA_BYTES = 256 << 20
PARSED_PER_BYTE = 10  # memory per byte of JSON parsed: 2.3 measured on the shipped random forest
SKLEARN_TYPES = frozenset({
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.svm._classes.SVC",
    "sklearn.svm._classes.OneClassSVM",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.ensemble._weight_boosting.AdaBoostClassifier",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
})
_NUMPY = ("ndarray", "bool", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
          "uint64", "float16", "float32", "float64", "str_")
TRUSTED = SKLEARN_TYPES | {f"builtins.{t}" for t in ("dict", "list", "tuple", "str", "int", "float", "bool",
                                                     "NoneType")} \
    | {"collections.OrderedDict", "numpy.random.mtrand.RandomState"} | {f"numpy.{t}" for t in _NUMPY}
LOADERS = frozenset({"DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "ObjectNode",
                     "TypeNode", "TreeNode", "RandomStateNode", "CachedNode"})


def _node_types(data: bytes) -> set[tuple]:
    """(loader, module, class) of every node (a JSON object with a __loader__) in the schema,
    collected while it is parsed; a value that is not text is None."""
    found: set[tuple] = set()

    def note(obj: dict) -> dict:
        if "__loader__" in obj:
            found.add(tuple(v if isinstance(v, str) else None
                            for v in (obj["__loader__"], obj.get("__module__"), obj.get("__class__"))))
        return obj

    json.loads(data, object_hook=note)
    return found


def skops_problem(path: str | Path) -> str:
    """'' when every object the file describes is of a trusted type, else why not (one line)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                return f"its schema.json claims {info.file_size} bytes"
            check_fits(PARSED_PER_BYTE * info.file_size, "its schema parsed")
            with archive.open(info) as fp:
                nodes = _node_types(fp.read(MAX_SCHEMA_BYTES + 1))
    except KeyError:
        return "it is not a skops file (no schema.json)"
    except TooLarge as exc:
        return str(exc)
    except zipfile.BadZipFile:
        return "it is not a skops file (not a zip archive)"
    except RecursionError:
        return "its schema nests too deeply"
    except Exception as exc:  # noqa: BLE001 - damaged records (zlib.error ...), bad JSON or UTF-8
        return f"its schema cannot be read ({type(exc).__name__})"
    untrusted: list[str] = []
    for loader, module, cls in sorted(nodes, key=str):
        if None in (loader, module, cls):
            return "its schema has a node without a loader, module and class"
        name = f"{module}.{cls}" + ("" if loader in LOADERS else f" ({loader})")  # e.g. a function
        if (loader not in LOADERS or name not in TRUSTED) and shown(name) not in untrusted:
            untrusted.append(shown(name))
    if untrusted:
        more = f" and {len(untrusted) - 3} more" if len(untrusted) > 3 else ""
        return f"it holds types that are not trusted ({', '.join(untrusted[:3])}{more})"
    return ""
