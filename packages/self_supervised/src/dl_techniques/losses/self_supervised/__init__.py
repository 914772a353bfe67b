"""Self-supervised losses.

CLIP, SigLIP, NT-Xent, SupCon, VICReg, Barlow Twins, DINO, iBOT, KoLeo, feature alignment,
clustering.
"""

from dl_techniques.losses.self_supervised.barlow_twins_loss import BarlowTwinsLoss
from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.clustering_loss import ClusteringLoss
from dl_techniques.losses.self_supervised.contrastive_logits_layer import ContrastiveLogitsLayer
from dl_techniques.losses.self_supervised.dino_loss import DINOLoss
from dl_techniques.losses.self_supervised.feature_alignment_loss import FeatureAlignmentLoss
from dl_techniques.losses.self_supervised.ibot_patch_loss import iBOTPatchLoss
from dl_techniques.losses.self_supervised.koleo_loss import KoLeoLoss
from dl_techniques.losses.self_supervised.nt_xent_loss import NTXentLoss
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss
from dl_techniques.losses.self_supervised.supcon_loss import SupConLoss
from dl_techniques.losses.self_supervised.teacher_center_layer import TeacherCenterLayer
from dl_techniques.losses.self_supervised.vicreg_loss import VICRegLoss

# The entry points of pyproject.toml, written by tools/generate.py.
__all__ = [
    "BarlowTwinsLoss",
    "CLIPContrastiveLoss",
    "ClusteringLoss",
    "ContrastiveLogitsLayer",
    "DINOLoss",
    "FeatureAlignmentLoss",
    "KoLeoLoss",
    "NTXentLoss",
    "SigLIPContrastiveLoss",
    "SupConLoss",
    "TeacherCenterLayer",
    "VICRegLoss",
    "iBOTPatchLoss",
]
