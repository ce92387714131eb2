"""The real-data path: torchvision datasets and pretrained networks in the same study.

Needs the datasets on disk (and ideally a GPU); nothing is downloaded unless asked for
(`load_task(..., download=True)`, `load_model(..., allow_download=True)`).
"""

from .datasets import REAL_TASKS, available, image_folders, index, load_task, tasks
from .folders import SPEC_FILE
from .models import DEPTH_ARCHS, RealModel, WeightsNotFound, load_model
from .retrieval_layouts import DatasetNotFound, Item, Layout

__all__ = [
    "DEPTH_ARCHS",
    "REAL_TASKS",
    "SPEC_FILE",
    "DatasetNotFound",
    "Item",
    "Layout",
    "RealModel",
    "WeightsNotFound",
    "available",
    "image_folders",
    "index",
    "load_model",
    "load_task",
    "tasks",
]
