"""``needle.apps``: the course's application modules under their course file names.

``simple_ml`` (hw1/hw2/hw4 helpers), ``mlp_resnet`` (hw2's MLPResNet and its
training loop) and ``models`` (hw4's ResNet9 and LanguageModel). Course notebooks
import them as ``from needle.apps.simple_ml import *``.
"""
