"""Every name ``--model`` accepts, and what each needs -- known without PyTorch.

The network families are registered by their PyTorch definitions (:mod:`openheadpose.models`),
which inference never imports; :data:`REGISTERED` repeats their names so ``headpose models`` can
list them and a typo can be told apart from a network that needs ``--weights`` on a light
install. ``tests/test_bad_inputs.py`` checks it against :func:`openheadpose.models.list_models` (with PyTorch).

>>> check_model_name("hopenet-synth")
>>> check_model_name("hopnet")
Traceback (most recent call last):
...
KeyError: "unknown model 'hopnet'; choose from default, onnx, hopenet-synth, fsanet-synth, realheponet, hhpnet, heatmap-cnn, or a family given --weights: fsanet, hopenet, hhpnet-0.6, hhpnet-0.2, realheponet-w16, rot6d, ssrnet-mt (did you mean 'hopenet'?)"
"""

from __future__ import annotations

import difflib

from openheadpose.assets import SHIPPED_WEIGHTS

#: The landmark pipeline's name (detector + FaceMesh + a pose stage).
DEFAULT_MODEL = "default"

#: Names of the networks :mod:`openheadpose.models` registers (PyTorch definitions).
REGISTERED = (
    "fsanet-capsfusion", "fsanet-capsule", "fsanet-metric", "fsanet-netvlad", "fsanet-nos-capsule", "fsanet-nos-metric",
    "fsanet-nos-netvlad", "fsanet-var-capsule", "fsanet-var-metric", "fsanet-var-netvlad", "heatmap-cnn", "hhpnet", "hhpnet-0.2",
    "hhpnet-0.6", "hopenet-mobilenetv2", "hopenet-mobilenetv3small", "hopenet-resnet101", "hopenet-resnet152", "hopenet-resnet18",
    "hopenet-resnet34", "hopenet-resnet50", "hopenet-squeezenet1_0", "hopenet-squeezenet1_1", "realheponet", "realheponet-w16",
    "rot6d-mobilenetv3small", "rot6d-resnet18", "rot6d-tiny", "ssrnet-mt",
)  # fmt: skip

#: What the names that run without a weights file are.
SHIPPED = {
    "hopenet-synth": "image network on the face crop (shipped; the default model's pose stage)",
    "fsanet-synth": "image network, FSA-Net capsule (shipped)",
    "realheponet": "image network, grey crop; pan and tilt, roll 0 (shipped; try --detector heads)",
    "hhpnet": "keypoint network: nose, eyes, ears from --keypoints (shipped)",
    "heatmap-cnn": "keypoint network on rendered keypoint heatmaps (shipped)",
}

#: Families that need ``--weights`` (an .onnx from `headpose convert` / `headpose export`): name -> members.
WEIGHTS_FAMILIES = {
    "fsanet": "FSA-Net (converted official Keras weights: headpose convert fsanet ...)",
    "hopenet": "Hopenet / HopelessNet (headpose convert hopenet ...)",
    "hhpnet-0.6": "HHP-Net alpha 0.6 (headpose convert hhpnet ...)",
    "hhpnet-0.2": "HHP-Net alpha 0.2",
    "realheponet-w16": "RealHePoNet, wider",
    "rot6d": "6D-rotation networks trained here (headpose train, then export)",
    "ssrnet-mt": "SSR-Net-MT",
}


def model_names() -> dict[str, str]:
    """Every ``--model`` name -> what it is and what it needs, in the order ``headpose models`` lists them."""
    out = {DEFAULT_MODEL: "detector + FaceMesh + a pose stage (--pose); needs nothing more",
           "onnx": "any .onnx from headpose export / convert, taken as its metadata declares; needs --weights FILE.onnx"}
    out.update(SHIPPED)
    for fam, text in WEIGHTS_FAMILIES.items():
        members = [n for n in REGISTERED if n.startswith(fam + "-") and n not in SHIPPED]
        out[fam] = f"{text}; needs --weights FILE.onnx" + (f" (any of {', '.join(members)})" if members else "")
    return out


def needs_weights(name: str) -> bool:
    """True for a known name with no shipped weights (``onnx`` and the :data:`WEIGHTS_FAMILIES`)."""
    return name != DEFAULT_MODEL and name not in SHIPPED_WEIGHTS


def is_known(name: str) -> bool:
    """A name ``--model`` accepts: the pipeline, ``onnx``, a shipped network, a registered name, or a family prefix of one."""
    return (name in (DEFAULT_MODEL, "onnx") or name in SHIPPED_WEIGHTS or name in REGISTERED
            or any(r.startswith(name + "-") for r in REGISTERED))


def unknown_model_message(name: str) -> str:
    """``unknown model 'nope'; choose from ... (did you mean ...?)``."""
    shipped = [n for n in SHIPPED if n in SHIPPED_WEIGHTS]
    choices = [DEFAULT_MODEL, "onnx", *shipped]
    close = difflib.get_close_matches(name, [*choices, *WEIGHTS_FAMILIES, *REGISTERED], 1, 0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown model {name!r}; choose from {', '.join(choices)}, or a family given --weights: {', '.join(WEIGHTS_FAMILIES)}{hint}"


def check_model_name(name: str) -> None:
    """Refuse an unknown ``--model`` name with :func:`unknown_model_message`.

    Raises:
        KeyError: ``name`` is not :func:`is_known`.
    """
    if not is_known(name):
        raise KeyError(unknown_model_message(name))
