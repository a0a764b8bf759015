"""Dataset preparation: EgoHands, Pascal VOC and COCO into OD API TFRecords."""
