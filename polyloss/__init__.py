"""polyloss: segmentation and detection losses written once for every array API backend."""

from ._backend.policy import set_checks
from .adapters import keras_loss
from .detection.box_variants import mpdiou_loss, nwd_loss, siou_loss, wiou_loss
from .detection.boxes import (
    box_area,
    box_convert,
    box_iou,
    ciou_loss,
    diou_loss,
    eiou_loss,
    giou_loss,
    iou_loss,
)
from .detection.generalized_focal import distribution_focal_loss, integral_decode, quality_focal_loss, varifocal_loss
from .detection.rotated import box_to_gaussian, gwd_loss, kfiou_loss, kld_loss, probiou_loss, rotated_box_iou
from .detection.set_prediction import generalized_box_iou, hungarian_match, linear_sum_assignment, set_prediction_loss
from .detection.ssd import (
    balanced_l1_loss,
    decode_boxes,
    encode_boxes,
    hard_negative_mining,
    huber_loss,
    match_priors,
    multibox_loss,
    smooth_l1_loss,
)
from .detection.task_aligned import task_aligned_assign, task_aligned_loss
from .segmentation.boundary import boundary_iou, boundary_iou_loss, boundary_loss, hausdorff_dt_loss, soft_cldice_loss
from .segmentation.compound import bce_jaccard_loss, combo_loss, dice_cross_entropy_loss, dice_focal_loss
from .segmentation.distance import distance_transform, signed_distance_map, unet_weight_map
from .segmentation.lovasz import (
    lovasz_hinge_loss,
    lovasz_softmax_loss,
)
from .segmentation.metrics import average_surface_distance, dice_score, hausdorff_distance, iou_score, surface_dice
from .segmentation.pixelwise import (
    balanced_binary_cross_entropy,
    binary_cross_entropy,
    cross_entropy,
    poly1_cross_entropy,
    poly1_focal_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from .segmentation.region import (
    dice_loss,
    focal_tversky_loss,
    generalized_dice_loss,
    jaccard_loss,
    log_cosh_dice_loss,
    mcc_loss,
    soft_confusion,
    tversky_loss,
)
from .segmentation.supervision import deep_supervision
from .segmentation.topology import boundary_dou_loss, cl_cross_entropy_loss, skeleton_recall_loss, tubed_skeleton

__version__ = "0.1.0"

__all__ = [
    # set prediction (DETR)
    "hungarian_match",
    "linear_sum_assignment",
    "set_prediction_loss",
    # adapters
    "keras_loss",
    # settings
    "set_checks",
    # boundary and distance
    "boundary_iou",
    "boundary_iou_loss",
    "boundary_loss",
    "distance_transform",
    "hausdorff_dt_loss",
    "signed_distance_map",
    "soft_cldice_loss",
    "unet_weight_map",
    # boxes and detection
    "balanced_l1_loss",
    "box_area",
    "box_convert",
    "box_iou",
    "ciou_loss",
    "decode_boxes",
    "diou_loss",
    "eiou_loss",
    "encode_boxes",
    "generalized_box_iou",
    "giou_loss",
    "hard_negative_mining",
    "huber_loss",
    "iou_loss",
    "match_priors",
    "multibox_loss",
    "smooth_l1_loss",
    # pixel-wise
    "balanced_binary_cross_entropy",
    "binary_cross_entropy",
    "cross_entropy",
    "poly1_cross_entropy",
    "poly1_focal_loss",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    # region (overlap)
    "bce_jaccard_loss",
    "combo_loss",
    "dice_cross_entropy_loss",
    "dice_focal_loss",
    "dice_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "jaccard_loss",
    "log_cosh_dice_loss",
    "mcc_loss",
    "soft_confusion",
    "tversky_loss",
    # Lovasz
    "lovasz_hinge_loss",
    "lovasz_softmax_loss",
    # deep supervision, topology and surface metrics
    "deep_supervision",
    "tubed_skeleton",
    "skeleton_recall_loss",
    "cl_cross_entropy_loss",
    "boundary_dou_loss",
    "hausdorff_distance",
    "average_surface_distance",
    "surface_dice",
    "dice_score",
    "iou_score",
    # generalized focal family (one-stage detectors)
    "distribution_focal_loss",
    "integral_decode",
    "quality_focal_loss",
    "varifocal_loss",
    # rotated boxes
    "box_to_gaussian",
    "gwd_loss",
    "kfiou_loss",
    "kld_loss",
    "probiou_loss",
    "rotated_box_iou",
    # box-loss variants (issue 19)
    "mpdiou_loss",
    "nwd_loss",
    "siou_loss",
    "wiou_loss",
    # dense task-aligned assignment, YOLOv8 (issue 19)
    "task_aligned_assign",
    "task_aligned_loss",
]
