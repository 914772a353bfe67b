"""The core conformance kit over the YOLOv12 multi-task loss cases."""

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.vision.conformance.yolo import conformance_cases


class TestYOLOv12MultiTaskLossConformance(LossConformanceTests):
    cases = conformance_cases()
