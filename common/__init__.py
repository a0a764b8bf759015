"""What the workflow's stages (prep, pipelines, detect, webexport) share, one job a module:
``paths`` (the checkout, the shipped model, the cache folder), ``folders`` (atomic, stamped output
folders), ``cache`` (cache entries, files from pinned wheels), ``labelmap`` (the OD API's label
map) and ``tfenv`` (a quiet TensorFlow import). The runtime's pieces (errors, files, signals,
detections, detectors) are in the ``handspot`` package."""
