"""mmreason: train, build data for, evaluate and demo multimodal reasoning models grounded in evidence."""

__version__ = "0.1.0"
