"""The standard evaluation protocol's constants (protocol.md), defined once for evaluation, training and the demo."""

PRED_THRESHOLD = 0.49                      # a pixel is object when its probability exceeds this
MAX_CLICKS = 20                            # clicks per sample; NoC counts a sample that never gets there as this
NOC_THRESHOLDS = (0.80, 0.85, 0.90)        # IoU thresholds of NoC@80/85/90
NOF_THRESHOLDS = (0.85, 0.90)              # IoU thresholds of NoF@85/90
MIOU_CLICKS = (1, 3, 5, 10)                # mIoU@k reported in results tables
TARGET_SIZE = 400                          # longer side of the zoom-in crop for paper-scale models
DATASET_TARGET_SIZES = {"DAVIS": 600}      # ... on the datasets where the protocol uses another size
SCORE_CLICKS = 5                           # checkpoint choice: mean mIoU over clicks 1..SCORE_CLICKS (first clicks)
