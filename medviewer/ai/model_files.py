"""Model files are hostile input: what a model folder can make MedViewer read or build, checked
before anything reads it. No torch, no scikit-learn: the viewer lists models without them.

    resolve_inside(folder, name) -> Path
        a file a manifest names, resolved (symlinks followed); UnsafeModelFile unless it lies inside
        the model's folder (`../../../etc/passwd` with a matching SHA-256 is never opened)
    network_problem(network) -> str
        '' when the manifest's network is a class of monai.networks.nets (the only networks
        MedViewer builds; TorchScript, which carries code, is not accepted), else why not
    content_problem(path, framework, sha256) -> str
        '' when the weights hold only what the loader accepts, else why not:
        torch -- a state dict that torch.load(weights_only=True) reads (ai.state_dict_check);
        scikit-learn -- a skops file of trusted types only (ai.skops_check).
        The verdict is kept per SHA-256 for the process: the GUI's model list, `models` and `infer`
        look at a file's contents once, however often the models are listed.
    shown(text) -> str
        text from a file as a reason may quote it: io.messages.clean_text, imported when a reason
        is made (listing models that are fine does not import the readers)

Every reason is one line.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from medviewer.core.errors import MedViewerError

NETWORK_MODULE = "monai.networks.nets"
_NETWORK_CLASS = re.compile(re.escape(NETWORK_MODULE) + r"\.[A-Za-z_][A-Za-z0-9_]*")
_verdicts: dict[tuple[str, str], str] = {}


class UnsafeModelFile(MedViewerError):
    pass


def shown(text, limit: int = 120) -> str:
    from medviewer.io.messages import clean_text

    return clean_text(text, limit)


def resolve_inside(folder: str | os.PathLike, name) -> Path:
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        raise UnsafeModelFile(f"the manifest names {shown(name)!r} where a file name belongs")
    base = Path(os.path.realpath(folder))
    target = Path(os.path.realpath(base / name))
    if base not in target.parents:
        raise UnsafeModelFile(f"{shown(name)!r} lies outside the model's folder (it leads to "
                              f"{shown(target)}); refusing to read it")
    return target


def network_problem(network) -> str:
    if not isinstance(network, dict):
        return "the manifest's network must be a mapping with a class"
    if network.get("torchscript"):
        return f"TorchScript networks are not accepted (they carry code); name a class from {NETWORK_MODULE}"
    cls = network.get("class")
    if not isinstance(cls, str) or not _NETWORK_CLASS.fullmatch(cls):
        return (f"network class {shown(cls)!r} is not from {NETWORK_MODULE} "
                "(the only networks MedViewer builds)")
    if not isinstance(network.get("args", {}), dict):
        return "the manifest's network.args must be a mapping of argument names to values"
    return ""


def content_problem(path: Path, framework: str, sha256: str) -> str:
    key = (sha256, framework)
    if key not in _verdicts:
        if framework == "scikit-learn":
            from medviewer.ai.skops_check import skops_problem as problem_of
        else:
            from medviewer.ai.state_dict_check import state_dict_problem as problem_of
        _verdicts[key] = problem_of(path)
    problem = _verdicts[key]
    return f"weights file {shown(path.name)} refused: {problem}" if problem else ""
