"""``needle.data``: datasets, the DataLoader, transforms and language-model data (docs/api.md §6)."""

from .cifar10 import CIFAR10Dataset
from .dataset import Dataset, NDArrayDataset
from .loader import DataLoader
from .mnist import MNISTDataset
from .text import Corpus, Dictionary, batchify, get_batch
from .transforms import RandomCrop, RandomFlipHorizontal, Transform

__all__ = [
    "CIFAR10Dataset", "Corpus", "DataLoader", "Dataset", "Dictionary", "MNISTDataset", "NDArrayDataset",
    "RandomCrop", "RandomFlipHorizontal", "Transform", "batchify", "get_batch",
]
