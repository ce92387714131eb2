"""Which backend serves a notebook's profile: the embedded world, or one registered here.

A profile name that `profiles.get_profile` does not know may name another backend (a
`study.Backend`): its module, imported only when asked for (torchvision is heavy), builds
the notebook's `Study` from its checked parameters with `study_from_params`.
"""

from __future__ import annotations

import importlib

from .profiles import get_profile, with_world_seed
from .study import Study

# profile name -> module with `study_from_params(params, progress) -> Study`
REGISTERED = {"real": "transferlab.real.study"}


def study_for(params, progress: bool = True) -> Study:
    """The `Study` of a notebook's checked parameters (profile, world_seed or data_root...)."""
    if params.profile in REGISTERED:
        module = importlib.import_module(REGISTERED[params.profile])
        return module.study_from_params(params, progress=progress)
    profile = with_world_seed(get_profile(params.profile), params.world_seed)
    return Study(profile, progress=progress)
