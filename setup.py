from setuptools import find_packages, setup

setup(
    name="keras_mtl",
    version="0.1.0",
    description="Multi-task learning for Keras 3: sharing architectures, task weighting, "
    "a multi-task train step with separate optimizers, SavedModel export.",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_mtl", "keras_mtl.*"]),
    python_requires=">=3.10",
    install_requires=["keras>=3.15,<4", "numpy"],
    extras_require={
        # TensorFlow is the backend. Pick the CPU wheel on machines without a GPU,
        # so that pip does not pull the multi-GB CUDA build.
        "cpu": ["tensorflow-cpu>=2.21,<3"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<3"],
        "apps": ["matplotlib>=3.7", "rdkit>=2023.9"],
        # tfds 4.9.10 builds datasets through etils.epath, which imports
        # importlib_resources without declaring it; tfds.testing also needs dill.
        "datasets": ["tensorflow-datasets>=4.9", "importlib_resources", "rdkit>=2023.9"],
        "test": ["pytest>=8", "matplotlib>=3.7", "rdkit>=2023.9", "tensorflow-datasets>=4.9",
                 "importlib_resources", "dill"],
    },
)
