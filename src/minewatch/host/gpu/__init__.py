"""GPU evidence for the host agent: NVML telemetry, a mining-vs-AI classifier, the ``gpu`` probe.

Importing this package registers the ``gpu`` probe (:class:`GpuProbe`). NVML (``nvidia-ml-py``)
is imported only when a sampler runs, so the package imports on hosts without NVIDIA drivers.

Example::

    from minewatch.host.gpu import GpuTrace, classify_trace

    print(classify_trace(GpuTrace.load("trace.json")).state)
"""

from minewatch.host.gpu.classify import GpuFeatures, GpuVerdict, classify_trace, extract_features
from minewatch.host.gpu.probe import GpuProbe
from minewatch.host.gpu.telemetry import (
    NVML_BLIND_SPOT,
    GpuProcess,
    GpuSampler,
    GpuTrace,
    GpuUnavailableError,
    NvmlSampler,
    record,
)

__all__ = [
    "NVML_BLIND_SPOT",
    "GpuFeatures",
    "GpuProbe",
    "GpuProcess",
    "GpuSampler",
    "GpuTrace",
    "GpuUnavailableError",
    "GpuVerdict",
    "NvmlSampler",
    "classify_trace",
    "extract_features",
    "record",
]
