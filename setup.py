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
    # The versions the test suite runs on: the trainers use Keras' train loop and
    # MultiOptimizer (new in 3.15), so a new Keras minor release needs a new test run.
    install_requires=["keras>=3.15.1,<3.16", "numpy>=2,<3"],
    extras_require={
        # TensorFlow: the default backend, and tf.data for the datasets on any backend.
        # Pick the CPU wheel on machines without a GPU, so that pip does not pull the
        # multi-GB CUDA build.
        "cpu": ["tensorflow-cpu>=2.21,<2.22"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        # The JAX backend (KERAS_BACKEND=jax); jaxlib for CPU comes with it.
        "jax": ["jax>=0.10.2,<0.11"],
        # The applications and experiment tools: plots, and keras_mtl.statistics on scipy.stats.
        "apps": ["matplotlib>=3.7", "rdkit>=2023.9", "scipy>=1.11"],
        # tfds 4.9.10 builds datasets through etils.epath, which imports
        # importlib_resources without declaring it; tfds.testing also needs dill.
        "datasets": ["tensorflow-datasets>=4.9", "importlib_resources", "rdkit>=2023.9"],
        # The peer-agreement tier (marker `peers`, skipped without them): TorchJD and its
        # QP solver, pycocotools for detection's mAP. Install torch's CPU wheel first
        # (`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`),
        # so that pip does not pull the CUDA build.
        "peers": ["torch==2.13.0", "torchjd[quadprog_projector]>=0.18,<0.19", "pycocotools>=2.0"],
        "test": ["pytest>=8", "pytest-xdist>=3.5", "matplotlib>=3.7", "rdkit>=2023.9", "scipy>=1.11",
                 "tensorflow-datasets>=4.9",
                 "importlib_resources", "dill"],
    },
)
